# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mfa_admin_global_optspecs
    string join \n config= json h/help V/version
end

function __fish_mfa_admin_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mfa_admin_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mfa_admin_using_subcommand
    set -l cmd (__fish_mfa_admin_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -s V -l version -d 'Print version'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "init" -d 'Create the configuration, database and directories with safe modes'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "settings" -d 'Global settings'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "service" -d 'Second-factor method per PAM service'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "net" -d 'Trusted networks per service'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "user" -d 'Users known to mfa'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "contact" -d 'Users\' contacts (at most 4 each)'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "override" -d 'Per-user overrides'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "group" -d 'Groups of users: overrides and allowed factors shared by their members'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "carrier" -d 'Email-to-SMS carrier gateways'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "template" -d 'Message templates'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "log" -d 'The authentication log'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "audit" -d 'The log of administrators\' changes'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "fleet" -d 'This host\'s fleet: many hosts sharing one rule set and one log through PostgreSQL ([store] backend = "postgres")'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "test" -d 'Queue a test message to a user\'s contact (from the test-body template), or with --duo send the user a Duo Push and wait for the answer'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "queue" -d 'The delivery queue'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "totp" -d 'Authenticator-app (TOTP) keys'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "backup-codes" -d 'Generate single-use backup codes for a user (revokes the old ones)'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "sender" -d 'The delivery daemon'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "duo" -d 'Duo (method duo): ask Duo\'s Auth API through mfa-sender\'s broker'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "verify" -d 'Prove USER\'s second factor here, for scripts and applications that are not PAM services (root only); the exit status is the answer: 0 only for a proven factor'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "doctor" -d 'Diagnose this installation: files, database, spool, sender, PAM and sshd setup'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "maintain" -d 'Hourly upkeep, as mfa-maintenance.timer runs it: move and purge the auth log, resolve Unix groups, disable inactive users, send fail-mode notices, sweep expired login state, verify the policy snapshot (root only)'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "export" -d 'Write every rule as one TOML document (to FILE, or standard output)'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "import" -d 'Make the rules exactly those of a TOML document (all or nothing)'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "backup" -d 'Copy the whole store to FILE while logins go on (0600; as secret as the database)'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "restore" -d 'Replace the whole store by a backup (the current one is kept aside)'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "migrate" -d 'Move this machine\'s store into PostgreSQL: it becomes a fleet\'s first generation'
complete -c mfa-admin -n "__fish_mfa_admin_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand init" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand init" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand init" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and not __fish_seen_subcommand_from show set reset help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and not __fish_seen_subcommand_from show set reset help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and not __fish_seen_subcommand_from show set reset help" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and not __fish_seen_subcommand_from show set reset help" -f -a "show" -d 'Show every setting with its value and default'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and not __fish_seen_subcommand_from show set reset help" -f -a "set" -d 'Change settings: KEY=VALUE ... (all or none are applied)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and not __fish_seen_subcommand_from show set reset help" -f -a "reset" -d 'Return settings to their defaults'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and not __fish_seen_subcommand_from show set reset help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and __fish_seen_subcommand_from show" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and __fish_seen_subcommand_from show" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and __fish_seen_subcommand_from set" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and __fish_seen_subcommand_from set" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and __fish_seen_subcommand_from reset" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and __fish_seen_subcommand_from reset" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and __fish_seen_subcommand_from reset" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show every setting with its value and default'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and __fish_seen_subcommand_from help" -f -a "set" -d 'Change settings: KEY=VALUE ... (all or none are applied)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and __fish_seen_subcommand_from help" -f -a "reset" -d 'Return settings to their defaults'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand settings; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and not __fish_seen_subcommand_from list set del help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and not __fish_seen_subcommand_from list set del help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and not __fish_seen_subcommand_from list set del help" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and not __fish_seen_subcommand_from list set del help" -f -a "list" -d 'Show the method of each service (\'*\' covers the others)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and not __fish_seen_subcommand_from list set del help" -f -a "set" -d 'Set a service\'s method: none|passcode|totp|duo|any'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and not __fish_seen_subcommand_from list set del help" -f -a "del" -d 'Remove a service\'s own rule so that \'*\' applies to it'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and not __fish_seen_subcommand_from list set del help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and __fish_seen_subcommand_from list" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and __fish_seen_subcommand_from list" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and __fish_seen_subcommand_from set" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and __fish_seen_subcommand_from set" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and __fish_seen_subcommand_from del" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and __fish_seen_subcommand_from del" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and __fish_seen_subcommand_from del" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "list" -d 'Show the method of each service (\'*\' covers the others)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "set" -d 'Set a service\'s method: none|passcode|totp|duo|any'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "del" -d 'Remove a service\'s own rule so that \'*\' applies to it'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and not __fish_seen_subcommand_from list add del check help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and not __fish_seen_subcommand_from list add del check help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and not __fish_seen_subcommand_from list add del check help" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and not __fish_seen_subcommand_from list add del check help" -f -a "list" -d 'Show trusted-network rules'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and not __fish_seen_subcommand_from list add del check help" -f -a "add" -d 'Add a rule for a CIDR block or an address range'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and not __fish_seen_subcommand_from list add del check help" -f -a "del" -d 'Delete a rule by its ID'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and not __fish_seen_subcommand_from list add del check help" -f -a "check" -d 'Tell which rule decides for an address, and why (narrowest range wins)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and not __fish_seen_subcommand_from list add del check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from list" -l service -d 'Only rules of this service (and \'*\')' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from list" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from list" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from add" -l service -d 'PAM service, or \'*\' for every service' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from add" -l cidr -d 'A CIDR block: 10.0.0.0/24, 2001:db8::/32, or one address' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from add" -l range -d 'An address range: 10.2.2.0-10.2.2.254' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from add" -l require -d 'yes: 2FA required from here; no: trusted, no second factor' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from add" -l log -d 'Log level for outcomes this rule decides: all|rejects|none' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from add" -l note -d 'Free text shown in listings' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from add" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from add" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from del" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from del" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from del" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from check" -l service -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from check" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from check" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from help" -f -a "list" -d 'Show trusted-network rules'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a rule for a CIDR block or an address range'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from help" -f -a "del" -d 'Delete a rule by its ID'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from help" -f -a "check" -d 'Tell which rule decides for an address, and why (narrowest range wins)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand net; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and not __fish_seen_subcommand_from list add set show del enable disable unlock import help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and not __fish_seen_subcommand_from list add set show del enable disable unlock import help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and not __fish_seen_subcommand_from list add set show del enable disable unlock import help" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and not __fish_seen_subcommand_from list add set show del enable disable unlock import help" -f -a "list" -d 'Show every user'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and not __fish_seen_subcommand_from list add set show del enable disable unlock import help" -f -a "add" -d 'Add a user'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and not __fish_seen_subcommand_from list add set show del enable disable unlock import help" -f -a "set" -d 'Change a user\'s Duo user name (--duo [NAME] or --no-duo) or group (--group G|none)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and not __fish_seen_subcommand_from list add set show del enable disable unlock import help" -f -a "show" -d 'Show a user with contacts, overrides and lockout state'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and not __fish_seen_subcommand_from list add set show del enable disable unlock import help" -f -a "del" -d 'Delete a user with their contacts and overrides'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and not __fish_seen_subcommand_from list add set show del enable disable unlock import help" -f -a "enable" -d 'Enable a user\'s second factor'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and not __fish_seen_subcommand_from list add set show del enable disable unlock import help" -f -a "disable" -d 'Disable a user: refused wherever a second factor is required'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and not __fish_seen_subcommand_from list add set show del enable disable unlock import help" -f -a "unlock" -d 'End a user\'s lockout and clear their failure count'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and not __fish_seen_subcommand_from list add set show del enable disable unlock import help" -f -a "import" -d 'Create records in bulk: from a CSV file, or for the members of a Unix group'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and not __fish_seen_subcommand_from list add set show del enable disable unlock import help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from list" -l group -d 'Only the users this group governs (own, Unix or default membership)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from list" -l inactive -d 'Only the users without a proven second factor (nor a new record) for this long, such as 30d (the maintenance run\'s inactive_after, asked by hand)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from list" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from list" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from add" -l full-name -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from add" -l duo -d 'The user has Duo: under NAME, or under the login name when NAME is left out (put it after the user\'s name)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from add" -l group -d 'The user\'s own group (see `group list`)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from add" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from add" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from set" -l duo -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from set" -l group -d 'The user\'s own group, or none' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from set" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from set" -l no-duo -d 'The user is not known to have Duo'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from set" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from show" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from show" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from del" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from del" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from del" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from enable" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from enable" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from disable" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from disable" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from unlock" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from unlock" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from unlock" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from import" -l csv -d 'A CSV file of users (header: user,full_name,group,email,sms,phone,carrier)' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from import" -l unix-group -d 'Create records for the members of this Unix group' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from import" -l group -d 'With --unix-group: the own group of the records created' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from import" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from import" -l update -d 'With --csv: update users who have records (full name, group, new contacts)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from import" -l dry-run -d 'Check and report what would be done; write nothing'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from import" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "list" -d 'Show every user'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a user'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "set" -d 'Change a user\'s Duo user name (--duo [NAME] or --no-duo) or group (--group G|none)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show a user with contacts, overrides and lockout state'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "del" -d 'Delete a user with their contacts and overrides'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Enable a user\'s second factor'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Disable a user: refused wherever a second factor is required'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "unlock" -d 'End a user\'s lockout and clear their failure count'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "import" -d 'Create records in bulk: from a CSV file, or for the members of a Unix group'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and not __fish_seen_subcommand_from add list del help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and not __fish_seen_subcommand_from add list del help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and not __fish_seen_subcommand_from add list del help" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and not __fish_seen_subcommand_from add list del help" -f -a "add" -d 'Add a contact: --email, --phone with --carrier, or --sms'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and not __fish_seen_subcommand_from add list del help" -f -a "list" -d 'Show a user\'s contacts'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and not __fish_seen_subcommand_from add list del help" -f -a "del" -d 'Delete a user\'s contact by its number'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and not __fish_seen_subcommand_from add list del help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from add" -l email -d 'An email address' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from add" -l phone -d 'A 10-digit phone number reached through a carrier\'s email-to-SMS gateway' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from add" -l carrier -d 'The carrier of --phone (see `carrier list`)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from add" -l sms -d 'A number in E.164 form (+14155550123) for an SMS API' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from add" -l label -d 'A label shown in listings (e.g. work, cell)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from add" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from add" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from list" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from list" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from del" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from del" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from del" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a contact: --email, --phone with --carrier, or --sms'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from help" -f -a "list" -d 'Show a user\'s contacts'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from help" -f -a "del" -d 'Delete a user\'s contact by its number'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand contact; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and not __fish_seen_subcommand_from set list del help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and not __fish_seen_subcommand_from set list del help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and not __fish_seen_subcommand_from set list del help" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and not __fish_seen_subcommand_from set list del help" -f -a "set" -d 'Set a user\'s overrides (only the options given change)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and not __fish_seen_subcommand_from set list del help" -f -a "list" -d 'Show every override'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and not __fish_seen_subcommand_from set list del help" -f -a "del" -d 'Remove a user\'s overrides'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and not __fish_seen_subcommand_from set list del help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from set" -l mandatory -d '2FA even from trusted networks (default: the group\'s, else no)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from set" -l exempt -d 'Never asked for a second factor (emergency override; logged; default: the group\'s, else no)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from set" -l factors -d 'The factors the user may use: all, or some of passcode,totp,backup,duo (default: the group\'s, else all)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from set" -l self-enroll -d 'May register a contact at login (default: the global setting)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from set" -l log -d 'Log level for this user: all|rejects|none|default' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from set" -l double-logon-contact -d 'Where a double logon (one-password services) sends its passcode: the contact\'s number as `contact list` shows it, or default (the first contact)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from set" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from set" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from list" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from list" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from del" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from del" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from del" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from help" -f -a "set" -d 'Set a user\'s overrides (only the options given change)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from help" -f -a "list" -d 'Show every override'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from help" -f -a "del" -d 'Remove a user\'s overrides'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand override; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and not __fish_seen_subcommand_from list show add set del sync enable disable test help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and not __fish_seen_subcommand_from list show add set del sync enable disable test help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and not __fish_seen_subcommand_from list show add set del sync enable disable test help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and not __fish_seen_subcommand_from list show add set del sync enable disable test help" -f -a "list" -d 'Show every group with its settings and member counts'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and not __fish_seen_subcommand_from list show add set del sync enable disable test help" -f -a "show" -d 'Show a group: its settings and members by why (own, Unix group, default)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and not __fish_seen_subcommand_from list show add set del sync enable disable test help" -f -a "add" -d 'Create a group (1 to 64 letters, digits and . _ -)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and not __fish_seen_subcommand_from list show add set del sync enable disable test help" -f -a "set" -d 'Change a group (only the options given change; `default` unsets one)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and not __fish_seen_subcommand_from list show add set del sync enable disable test help" -f -a "del" -d 'Delete a group nobody depends on'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and not __fish_seen_subcommand_from list show add set del sync enable disable test help" -f -a "sync" -d 'Resolve the Unix groups that groups follow, now'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and not __fish_seen_subcommand_from list show add set del sync enable disable test help" -f -a "enable" -d 'Enable every member of a group (one audit entry with the count)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and not __fish_seen_subcommand_from list show add set del sync enable disable test help" -f -a "disable" -d 'Disable every member of a group: refused wherever 2FA is required'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and not __fish_seen_subcommand_from list show add set del sync enable disable test help" -f -a "test" -d 'Queue a test message to each member\'s first contact'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and not __fish_seen_subcommand_from list show add set del sync enable disable test help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from list" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from list" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from show" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from show" -l members -d 'Also list each member'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from show" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from add" -l description -d 'Free text shown in listings' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from add" -l mandatory -d 'Members prove a second factor even from trusted networks' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from add" -l exempt -d 'Members are never asked for a second factor (logged)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from add" -l self-enroll -d 'Members may register a contact at login (default: the global setting)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from add" -l log -d 'Log level for members' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from add" -l factors -d 'The factors members may use: all, or some of passcode,totp,backup,duo' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from add" -l unix-group -d 'Members of this Unix group are members (none: follow no Unix group)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from add" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from add" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from set" -l description -d 'Free text shown in listings' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from set" -l mandatory -d 'Members prove a second factor even from trusted networks' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from set" -l exempt -d 'Members are never asked for a second factor (logged)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from set" -l self-enroll -d 'Members may register a contact at login (default: the global setting)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from set" -l log -d 'Log level for members' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from set" -l factors -d 'The factors members may use: all, or some of passcode,totp,backup,duo' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from set" -l unix-group -d 'Members of this Unix group are members (none: follow no Unix group)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from set" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from set" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from del" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from del" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from del" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from sync" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from sync" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from sync" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from enable" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from enable" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from disable" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from disable" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from test" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from test" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "list" -d 'Show every group with its settings and member counts'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show a group: its settings and members by why (own, Unix group, default)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "add" -d 'Create a group (1 to 64 letters, digits and . _ -)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "set" -d 'Change a group (only the options given change; `default` unsets one)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "del" -d 'Delete a group nobody depends on'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "sync" -d 'Resolve the Unix groups that groups follow, now'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Enable every member of a group (one audit entry with the count)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Disable every member of a group: refused wherever 2FA is required'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "test" -d 'Queue a test message to each member\'s first contact'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and not __fish_seen_subcommand_from list add del help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and not __fish_seen_subcommand_from list add del help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and not __fish_seen_subcommand_from list add del help" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and not __fish_seen_subcommand_from list add del help" -f -a "list" -d 'Show the carrier gateways'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and not __fish_seen_subcommand_from list add del help" -f -a "add" -d 'Add a carrier: NAME and its gateway domain (e.g. vtext.com)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and not __fish_seen_subcommand_from list add del help" -f -a "del" -d 'Delete a carrier no contact uses'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and not __fish_seen_subcommand_from list add del help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and __fish_seen_subcommand_from list" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and __fish_seen_subcommand_from list" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and __fish_seen_subcommand_from add" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and __fish_seen_subcommand_from add" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and __fish_seen_subcommand_from del" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and __fish_seen_subcommand_from del" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and __fish_seen_subcommand_from del" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and __fish_seen_subcommand_from help" -f -a "list" -d 'Show the carrier gateways'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a carrier: NAME and its gateway domain (e.g. vtext.com)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and __fish_seen_subcommand_from help" -f -a "del" -d 'Delete a carrier no contact uses'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand carrier; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and not __fish_seen_subcommand_from show set reset help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and not __fish_seen_subcommand_from show set reset help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and not __fish_seen_subcommand_from show set reset help" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and not __fish_seen_subcommand_from show set reset help" -f -a "show" -d 'Show the templates (or one)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and not __fish_seen_subcommand_from show set reset help" -f -a "set" -d 'Change a template: passcode-subject, passcode-body, test-body, duo-enroll-subject or duo-enroll-body'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and not __fish_seen_subcommand_from show set reset help" -f -a "reset" -d 'Return a template to its default text'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and not __fish_seen_subcommand_from show set reset help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and __fish_seen_subcommand_from show" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and __fish_seen_subcommand_from show" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and __fish_seen_subcommand_from set" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and __fish_seen_subcommand_from set" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and __fish_seen_subcommand_from reset" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and __fish_seen_subcommand_from reset" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and __fish_seen_subcommand_from reset" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show the templates (or one)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and __fish_seen_subcommand_from help" -f -a "set" -d 'Change a template: passcode-subject, passcode-body, test-body, duo-enroll-subject or duo-enroll-body'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and __fish_seen_subcommand_from help" -f -a "reset" -d 'Return a template to its default text'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand template; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and not __fish_seen_subcommand_from show purge help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and not __fish_seen_subcommand_from show purge help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and not __fish_seen_subcommand_from show purge help" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and not __fish_seen_subcommand_from show purge help" -f -a "show" -d 'Show authentication outcomes, oldest first'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and not __fish_seen_subcommand_from show purge help" -f -a "purge" -d 'Delete old entries: --before DATE, --keep-days N, or the log_keep_days setting'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and not __fish_seen_subcommand_from show purge help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from show" -l user -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from show" -l address -d 'An address, or a CIDR block / range of addresses' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from show" -l service -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from show" -l outcome -d 'Only this outcome: success, ignore, deny, abandoned, rate-limited, unavailable-deny, unavailable-ignore' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from show" -l since -d 'From this time (date, date and time, RFC 3339, or an age such as 2h or 7d)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from show" -l until -d 'Before this time (same forms as --since)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from show" -l limit -d 'Only the newest N entries' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from show" -l host -d 'In a fleet: only this host\'s entries in the central log (which every host ships to)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from show" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from show" -l local -d 'In a fleet: read this host\'s own database instead of the central log'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from show" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from purge" -l before -d 'Delete entries before this time (2026-01-31, \'2026-01-31 12:00\', RFC 3339)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from purge" -l keep-days -d 'Keep only the last N days' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from purge" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from purge" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from purge" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show authentication outcomes, oldest first'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from help" -f -a "purge" -d 'Delete old entries: --before DATE, --keep-days N, or the log_keep_days setting'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand log; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand audit; and not __fish_seen_subcommand_from show help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand audit; and not __fish_seen_subcommand_from show help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand audit; and not __fish_seen_subcommand_from show help" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand audit; and not __fish_seen_subcommand_from show help" -f -a "show" -d 'Show administrators\' changes, oldest first'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand audit; and not __fish_seen_subcommand_from show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand audit; and __fish_seen_subcommand_from show" -l since -d 'From this time (same forms as `log show --since`)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand audit; and __fish_seen_subcommand_from show" -l limit -d 'Only the newest N entries' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand audit; and __fish_seen_subcommand_from show" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand audit; and __fish_seen_subcommand_from show" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand audit; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show administrators\' changes, oldest first'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and not __fish_seen_subcommand_from status join sync help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and not __fish_seen_subcommand_from status join sync help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and not __fish_seen_subcommand_from status join sync help" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and not __fish_seen_subcommand_from status join sync help" -f -a "status" -d 'Every host of the fleet: its policy generation, last contact, queues and last error'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and not __fish_seen_subcommand_from status join sync help" -f -a "join" -d 'Make this host a member of the fleet named in [store]: its rules become the fleet\'s'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and not __fish_seen_subcommand_from status join sync help" -f -a "sync" -d 'Ship this host\'s changes and apply the fleet\'s now (mfa-fleetd does it continuously)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and not __fish_seen_subcommand_from status join sync help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and __fish_seen_subcommand_from status" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and __fish_seen_subcommand_from status" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and __fish_seen_subcommand_from join" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and __fish_seen_subcommand_from join" -l replace-local-rules -d 'Replace this host\'s own users and rules with the fleet\'s'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and __fish_seen_subcommand_from join" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and __fish_seen_subcommand_from join" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and __fish_seen_subcommand_from sync" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and __fish_seen_subcommand_from sync" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and __fish_seen_subcommand_from sync" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "status" -d 'Every host of the fleet: its policy generation, last contact, queues and last error'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "join" -d 'Make this host a member of the fleet named in [store]: its rules become the fleet\'s'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "sync" -d 'Ship this host\'s changes and apply the fleet\'s now (mfa-fleetd does it continuously)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand test" -l contact -d 'Contact number (default: the user\'s first contact)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand test" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand test" -l duo -d 'Send a Duo Push instead of a message (needs [duo] and mfa-sender running)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand test" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand test" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and not __fish_seen_subcommand_from list retry purge help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and not __fish_seen_subcommand_from list retry purge help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and not __fish_seen_subcommand_from list retry purge help" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and not __fish_seen_subcommand_from list retry purge help" -f -a "list" -d 'Pending, in-flight and failed messages (recipients masked)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and not __fish_seen_subcommand_from list retry purge help" -f -a "retry" -d 'Put failed messages back in the queue'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and not __fish_seen_subcommand_from list retry purge help" -f -a "purge" -d 'Delete messages'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and not __fish_seen_subcommand_from list retry purge help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and __fish_seen_subcommand_from list" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and __fish_seen_subcommand_from list" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and __fish_seen_subcommand_from retry" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and __fish_seen_subcommand_from retry" -l all-failed -d 'Every failed message'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and __fish_seen_subcommand_from retry" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and __fish_seen_subcommand_from retry" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and __fish_seen_subcommand_from purge" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and __fish_seen_subcommand_from purge" -l failed -d 'Delete every failed message'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and __fish_seen_subcommand_from purge" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and __fish_seen_subcommand_from purge" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "list" -d 'Pending, in-flight and failed messages (recipients masked)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "retry" -d 'Put failed messages back in the queue'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "purge" -d 'Delete messages'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and not __fish_seen_subcommand_from enroll reset remove help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and not __fish_seen_subcommand_from enroll reset remove help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and not __fish_seen_subcommand_from enroll reset remove help" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and not __fish_seen_subcommand_from enroll reset remove help" -f -a "enroll" -d 'Give a user an authenticator key: prints the key, the otpauth:// URI and a QR code'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and not __fish_seen_subcommand_from enroll reset remove help" -f -a "reset" -d 'Replace a user\'s key with a new one (the old one stops working at once)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and not __fish_seen_subcommand_from enroll reset remove help" -f -a "remove" -d 'Remove a user\'s key'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and not __fish_seen_subcommand_from enroll reset remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from enroll" -l digits -d '6 or 8' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from enroll" -l algorithm -d 'sha1, sha256 or sha512 (most apps only support sha1)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from enroll" -l png -d 'Also write the QR code as a PNG image' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from enroll" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from enroll" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from enroll" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from reset" -l png -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from reset" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from reset" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from reset" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from remove" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from remove" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from help" -f -a "enroll" -d 'Give a user an authenticator key: prints the key, the otpauth:// URI and a QR code'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from help" -f -a "reset" -d 'Replace a user\'s key with a new one (the old one stops working at once)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a user\'s key'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand totp; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand backup-codes" -l count -d 'How many codes' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand backup-codes" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand backup-codes" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand backup-codes" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand sender; and not __fish_seen_subcommand_from status help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand sender; and not __fish_seen_subcommand_from status help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand sender; and not __fish_seen_subcommand_from status help" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand sender; and not __fish_seen_subcommand_from status help" -f -a "status" -d 'Heartbeat age, queue counts and the last delivery error'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand sender; and not __fish_seen_subcommand_from status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand sender; and __fish_seen_subcommand_from status" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand sender; and __fish_seen_subcommand_from status" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand sender; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand sender; and __fish_seen_subcommand_from help" -f -a "status" -d 'Heartbeat age, queue counts and the last delivery error'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand sender; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and not __fish_seen_subcommand_from ping check preauth enroll enroll-status help" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and not __fish_seen_subcommand_from ping check preauth enroll enroll-status help" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and not __fish_seen_subcommand_from ping check preauth enroll enroll-status help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and not __fish_seen_subcommand_from ping check preauth enroll enroll-status help" -f -a "ping" -d 'Is Duo reachable from mfa-sender? (Duo\'s /ping, unsigned)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and not __fish_seen_subcommand_from ping check preauth enroll enroll-status help" -f -a "check" -d 'Are the integration key, secret key and API host right? (Duo\'s signed /check)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and not __fish_seen_subcommand_from ping check preauth enroll enroll-status help" -f -a "preauth" -d 'What Duo says of a user: auth (with their devices), allow, deny or enroll'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and not __fish_seen_subcommand_from ping check preauth enroll enroll-status help" -f -a "enroll" -d 'Enrol a user with Duo: prints the activation link, code and expiry'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and not __fish_seen_subcommand_from ping check preauth enroll enroll-status help" -f -a "enroll-status" -d 'Whether an enrolment is done: success, waiting or invalid'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and not __fish_seen_subcommand_from ping check preauth enroll enroll-status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from ping" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from ping" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from ping" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from check" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from check" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from preauth" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from preauth" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from preauth" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from enroll" -l send -d 'Send the link to the user\'s first email or SMS contact, or contact N' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from enroll" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from enroll" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from enroll" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from enroll-status" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from enroll-status" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from enroll-status" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from help" -f -a "ping" -d 'Is Duo reachable from mfa-sender? (Duo\'s /ping, unsigned)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from help" -f -a "check" -d 'Are the integration key, secret key and API host right? (Duo\'s signed /check)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from help" -f -a "preauth" -d 'What Duo says of a user: auth (with their devices), allow, deny or enroll'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from help" -f -a "enroll" -d 'Enrol a user with Duo: prints the activation link, code and expiry'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from help" -f -a "enroll-status" -d 'Whether an enrolment is done: success, waiting or invalid'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand duo; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand verify" -l service -d 'The rules\' service name' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand verify" -l address -d 'The client\'s IP address, for trusted networks and the repeat window [default: local]' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand verify" -l tty -d 'The terminal, as PAM_TTY, for the log [default: standard input\'s terminal, if any]' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand verify" -l timeout -d 'Seconds each answer may take' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand verify" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand verify" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand doctor" -l pam-dir -d 'Directory of PAM service files to inspect' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand doctor" -l sshd-config -d 'sshd configuration to inspect' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand doctor" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand doctor" -l full -d 'Check the whole database (SQLite\'s integrity_check, logs included: seconds at a million log rows) instead of the quick check of the tables logins read'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand doctor" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand maintain" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand maintain" -l allow-mass-disable -d 'Disable the inactive users even when they are more than half of the enabled ones'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand maintain" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand maintain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand export" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand export" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand export" -s h -l help -d 'Print help'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand import" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand import" -l dry-run -d 'Check the document and print what an import would change; write nothing'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand import" -l allow-no-users -d 'Import a document that holds no user into a store that has users (every user is deleted); refused without it'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand import" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand backup" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand backup" -l force -d 'Replace FILE if it exists (a link there is replaced, not followed)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand backup" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand restore" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand restore" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand migrate" -l to -d 'Where to: postgres' -r -f -a "postgres\t''"
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand migrate" -l password-file -d 'A file holding the role\'s password (root only, 0600)' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand migrate" -l ca-file -d 'The CA certificate(s) the server\'s certificate must chain to (TLS)' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand migrate" -l host -d 'This host\'s name in the fleet (default: the machine\'s host name)' -r
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand migrate" -l config -d 'Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]' -r -F
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand migrate" -l json -d 'Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "init" -d 'Create the configuration, database and directories with safe modes'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "settings" -d 'Global settings'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "service" -d 'Second-factor method per PAM service'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "net" -d 'Trusted networks per service'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "user" -d 'Users known to mfa'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "contact" -d 'Users\' contacts (at most 4 each)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "override" -d 'Per-user overrides'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "group" -d 'Groups of users: overrides and allowed factors shared by their members'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "carrier" -d 'Email-to-SMS carrier gateways'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "template" -d 'Message templates'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "log" -d 'The authentication log'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "audit" -d 'The log of administrators\' changes'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "fleet" -d 'This host\'s fleet: many hosts sharing one rule set and one log through PostgreSQL ([store] backend = "postgres")'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "test" -d 'Queue a test message to a user\'s contact (from the test-body template), or with --duo send the user a Duo Push and wait for the answer'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "queue" -d 'The delivery queue'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "totp" -d 'Authenticator-app (TOTP) keys'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "backup-codes" -d 'Generate single-use backup codes for a user (revokes the old ones)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "sender" -d 'The delivery daemon'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "duo" -d 'Duo (method duo): ask Duo\'s Auth API through mfa-sender\'s broker'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "verify" -d 'Prove USER\'s second factor here, for scripts and applications that are not PAM services (root only); the exit status is the answer: 0 only for a proven factor'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "doctor" -d 'Diagnose this installation: files, database, spool, sender, PAM and sshd setup'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "maintain" -d 'Hourly upkeep, as mfa-maintenance.timer runs it: move and purge the auth log, resolve Unix groups, disable inactive users, send fail-mode notices, sweep expired login state, verify the policy snapshot (root only)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "export" -d 'Write every rule as one TOML document (to FILE, or standard output)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "import" -d 'Make the rules exactly those of a TOML document (all or nothing)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "backup" -d 'Copy the whole store to FILE while logins go on (0600; as secret as the database)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "restore" -d 'Replace the whole store by a backup (the current one is kept aside)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "migrate" -d 'Move this machine\'s store into PostgreSQL: it becomes a fleet\'s first generation'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and not __fish_seen_subcommand_from init settings service net user contact override group carrier template log audit fleet test queue totp backup-codes sender duo verify doctor maintain export import backup restore migrate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from settings" -f -a "show" -d 'Show every setting with its value and default'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from settings" -f -a "set" -d 'Change settings: KEY=VALUE ... (all or none are applied)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from settings" -f -a "reset" -d 'Return settings to their defaults'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "list" -d 'Show the method of each service (\'*\' covers the others)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "set" -d 'Set a service\'s method: none|passcode|totp|duo|any'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "del" -d 'Remove a service\'s own rule so that \'*\' applies to it'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from net" -f -a "list" -d 'Show trusted-network rules'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from net" -f -a "add" -d 'Add a rule for a CIDR block or an address range'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from net" -f -a "del" -d 'Delete a rule by its ID'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from net" -f -a "check" -d 'Tell which rule decides for an address, and why (narrowest range wins)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "list" -d 'Show every user'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "add" -d 'Add a user'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "set" -d 'Change a user\'s Duo user name (--duo [NAME] or --no-duo) or group (--group G|none)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "show" -d 'Show a user with contacts, overrides and lockout state'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "del" -d 'Delete a user with their contacts and overrides'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "enable" -d 'Enable a user\'s second factor'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "disable" -d 'Disable a user: refused wherever a second factor is required'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "unlock" -d 'End a user\'s lockout and clear their failure count'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "import" -d 'Create records in bulk: from a CSV file, or for the members of a Unix group'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from contact" -f -a "add" -d 'Add a contact: --email, --phone with --carrier, or --sms'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from contact" -f -a "list" -d 'Show a user\'s contacts'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from contact" -f -a "del" -d 'Delete a user\'s contact by its number'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from override" -f -a "set" -d 'Set a user\'s overrides (only the options given change)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from override" -f -a "list" -d 'Show every override'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from override" -f -a "del" -d 'Remove a user\'s overrides'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "list" -d 'Show every group with its settings and member counts'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "show" -d 'Show a group: its settings and members by why (own, Unix group, default)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "add" -d 'Create a group (1 to 64 letters, digits and . _ -)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "set" -d 'Change a group (only the options given change; `default` unsets one)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "del" -d 'Delete a group nobody depends on'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "sync" -d 'Resolve the Unix groups that groups follow, now'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "enable" -d 'Enable every member of a group (one audit entry with the count)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "disable" -d 'Disable every member of a group: refused wherever 2FA is required'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "test" -d 'Queue a test message to each member\'s first contact'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from carrier" -f -a "list" -d 'Show the carrier gateways'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from carrier" -f -a "add" -d 'Add a carrier: NAME and its gateway domain (e.g. vtext.com)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from carrier" -f -a "del" -d 'Delete a carrier no contact uses'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from template" -f -a "show" -d 'Show the templates (or one)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from template" -f -a "set" -d 'Change a template: passcode-subject, passcode-body, test-body, duo-enroll-subject or duo-enroll-body'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from template" -f -a "reset" -d 'Return a template to its default text'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from log" -f -a "show" -d 'Show authentication outcomes, oldest first'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from log" -f -a "purge" -d 'Delete old entries: --before DATE, --keep-days N, or the log_keep_days setting'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "show" -d 'Show administrators\' changes, oldest first'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "status" -d 'Every host of the fleet: its policy generation, last contact, queues and last error'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "join" -d 'Make this host a member of the fleet named in [store]: its rules become the fleet\'s'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "sync" -d 'Ship this host\'s changes and apply the fleet\'s now (mfa-fleetd does it continuously)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "list" -d 'Pending, in-flight and failed messages (recipients masked)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "retry" -d 'Put failed messages back in the queue'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "purge" -d 'Delete messages'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from totp" -f -a "enroll" -d 'Give a user an authenticator key: prints the key, the otpauth:// URI and a QR code'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from totp" -f -a "reset" -d 'Replace a user\'s key with a new one (the old one stops working at once)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from totp" -f -a "remove" -d 'Remove a user\'s key'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from sender" -f -a "status" -d 'Heartbeat age, queue counts and the last delivery error'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from duo" -f -a "ping" -d 'Is Duo reachable from mfa-sender? (Duo\'s /ping, unsigned)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from duo" -f -a "check" -d 'Are the integration key, secret key and API host right? (Duo\'s signed /check)'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from duo" -f -a "preauth" -d 'What Duo says of a user: auth (with their devices), allow, deny or enroll'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from duo" -f -a "enroll" -d 'Enrol a user with Duo: prints the activation link, code and expiry'
complete -c mfa-admin -n "__fish_mfa_admin_using_subcommand help; and __fish_seen_subcommand_from duo" -f -a "enroll-status" -d 'Whether an enrolment is done: success, waiting or invalid'
