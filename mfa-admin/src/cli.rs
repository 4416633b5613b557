//! The command line as typed: clap definitions only. Values stay raw strings here and are
//! validated by mfa-core, so every bad input gets the same message whatever path it takes.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

/// Manage mfa: who must prove a second factor, where and how.
#[derive(Debug, Parser)]
#[command(name = "mfa-admin", version, about, max_term_width = 100)]
pub struct Cli {
    /// Configuration file [default: $MFA_CONFIG, else /etc/mfa/mfa.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Machine-readable JSON output (formats: /usr/share/doc/mfa/json.md; docs/json.md in the source)
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the configuration, database and directories with safe modes
    Init,
    /// Global settings
    #[command(subcommand)]
    Settings(SettingsCmd),
    /// Second-factor method per PAM service
    #[command(subcommand)]
    Service(ServiceCmd),
    /// Trusted networks per service
    #[command(subcommand)]
    Net(NetCmd),
    /// Users known to mfa
    #[command(subcommand)]
    User(UserCmd),
    /// Users' contacts (at most 4 each)
    #[command(subcommand)]
    Contact(ContactCmd),
    /// Per-user overrides
    #[command(subcommand)]
    Override(OverrideCmd),
    /// Groups of users: overrides and allowed factors shared by their members
    ///
    /// A user's group is their own (`user set USER --group G`), else the first group by name
    /// that follows a Unix group they are in (`--unix-group`), else the default_group
    /// setting. A user's own override beats their group's, the group's beats the global
    /// setting; `user show` says where each value comes from. Unix groups are resolved by
    /// mfa-admin through NSS (`group add/set --unix-group`, `group sync`, and the hourly
    /// maintenance run `mfa-admin maintain`), never inside a login: logins read the members
    /// resolved last, so a slow directory cannot hang a login, and a change in the Unix
    /// group counts once one of those has run.
    #[command(subcommand)]
    Group(GroupCmd),
    /// Email-to-SMS carrier gateways
    #[command(subcommand)]
    Carrier(CarrierCmd),
    /// Message templates
    #[command(subcommand)]
    Template(TemplateCmd),
    /// The authentication log
    #[command(subcommand)]
    Log(LogCmd),
    /// The log of administrators' changes
    #[command(subcommand)]
    Audit(AuditCmd),
    /// This host's fleet: many hosts sharing one rule set and one log through PostgreSQL
    /// ([store] backend = "postgres")
    #[command(subcommand)]
    Fleet(FleetCmd),
    /// Queue a test message to a user's contact (from the test-body template), or with
    /// --duo send the user a Duo Push and wait for the answer
    ///
    /// With --duo: Duo's preauth for the user (their Duo user name, else the login name),
    /// then a push to the first push-capable device, through mfa-sender's Duo broker; prints
    /// what Duo says while it waits and the answer. Exit status 0 only when the push was
    /// approved; 1 when it was denied, not answered in [duo] timeout, or could not be sent.
    Test {
        user: String,
        /// Contact number (default: the user's first contact)
        #[arg(long, conflicts_with = "duo")]
        contact: Option<String>,
        /// Send a Duo Push instead of a message (needs [duo] and mfa-sender running)
        #[arg(long)]
        duo: bool,
    },
    /// The delivery queue
    #[command(subcommand)]
    Queue(QueueCmd),
    /// Authenticator-app (TOTP) keys
    #[command(subcommand)]
    Totp(TotpCmd),
    /// Generate single-use backup codes for a user (revokes the old ones)
    BackupCodes {
        user: String,
        /// How many codes
        #[arg(long, default_value = "10")]
        count: String,
    },
    /// The delivery daemon
    #[command(subcommand)]
    Sender(SenderCmd),
    /// Duo (method duo): ask Duo's Auth API through mfa-sender's broker
    ///
    /// mfa-sender alone holds Duo's secret key ([duo] in mfa.toml) and talks to Duo; these
    /// commands ask it over its local socket (<runtime>/duo.sock, root only). A user's Duo
    /// user name is the one `user set USER --duo NAME` recorded, else the login name. When
    /// the broker or Duo cannot answer, the message says which and what to check; exit
    /// status 1 (2 for bad input, or a request Duo refused as malformed or unknown).
    #[command(subcommand)]
    Duo(DuoCmd),
    /// Prove USER's second factor here, for scripts and applications that are not PAM
    /// services (root only); the exit status is the answer: 0 only for a proven factor
    ///
    /// Runs the PAM module's own flow (the same rules, trusted networks, menus, send limits,
    /// lockouts, auth log and syslog line) for USER on service --service (default
    /// mfa-verify: `service set mfa-verify totp`, `net add --service mfa-verify ...` apply to
    /// it as to any PAM service), from --address (default: a local login).
    ///
    /// Prompts and messages go to standard error; the result is one line on standard output
    /// (one JSON object with --json). When standard input is a terminal, codes are typed
    /// without echo, and Ctrl-C, Ctrl-D or the timeout end the conversation (a denial).
    /// Otherwise each prompt is one line on standard error ending in ": ", and its answer is
    /// the next line of standard input; end of input before an answer is a denial. A
    /// passcode prompt comes after the passcode was sent, so a script reads standard error
    /// until it appears.
    ///
    /// Self-enrollment only on a terminal, and only when sudo was run by USER themself
    /// (SUDO_USER): another account's conversation never registers a factor for USER.
    ///
    /// Exit status: 0 the second factor was proved; 1 denied (wrong code, lockout, disabled
    /// user, rate limit, conversation ended or timed out); 2 bad input or not root (nothing
    /// read or asked); 3 no factor was required (exempt user, trusted network, repeat window,
    /// unassigned=allow, method none: the line says which); 4 mfa could not work (rules
    /// unreadable, sender down, ...), whatever fail_mode says; 128+N killed by signal N (a
    /// terminal gets its settings back). Non-root applications run it through sudo with a
    /// rule naming it, e.g. `www-data ALL=(root) NOPASSWD: /usr/sbin/mfa-admin verify *`.
    /// Through sudo (or doas) it answers only for the services mfa-verify and
    /// mfa-verify-NAME (a proven factor leaves a repeat-window grant for the service and
    /// address, which no PAM service's logins may inherit; mfa-verify-NAME takes the rules
    /// of mfa-verify until it has its own), and takes --config and MFA_CONFIG only for a
    /// file whose path nobody but root can change (exit 2 otherwise).
    Verify(VerifyArgs),
    /// Diagnose this installation: files, database, spool, sender, PAM and sshd setup
    ///
    /// The PAM checks cover every stack in --pam-dir: modules that load, pam_mfa's place and
    /// arguments, one-password stacks (oneword=before, a requisite password module with
    /// use_first_pass, oneword=after), proftpd.conf when proftpd runs pam_mfa, and the
    /// [callers] of mfa.toml with the setuid helper mfa-check they need.
    ///
    /// The database check is quick by default: SQLite's quick_check of every table but the
    /// auth and audit logs, and the foreign keys (well under a second at 100,000 users and a
    /// million log rows). --full runs SQLite's whole integrity_check instead (the logs, the
    /// cross-check of every index against its table, the free list): seconds at that size.
    /// doctor also warns when the module's auth-log inbox has a backlog that no mfa-admin
    /// command or maintenance run has moved into the database. With [duo] in mfa.toml, its
    /// duo check asks Duo's signed /check through mfa-sender's broker and says which part
    /// failed: the broker not running, Duo unreachable, or the credentials refused.
    Doctor {
        /// Directory of PAM service files to inspect
        #[arg(long, default_value = "/etc/pam.d", value_name = "DIR")]
        pam_dir: PathBuf,
        /// sshd configuration to inspect
        #[arg(long, default_value = "/etc/ssh/sshd_config", value_name = "FILE")]
        sshd_config: PathBuf,
        /// Check the whole database (SQLite's integrity_check, logs included: seconds at a
        /// million log rows) instead of the quick check of the tables logins read
        #[arg(long)]
        full: bool,
    },
    /// Hourly upkeep, as mfa-maintenance.timer runs it: move and purge the auth log, resolve
    /// Unix groups, disable inactive users, send fail-mode notices, sweep expired login
    /// state, verify the policy snapshot (root only)
    ///
    /// Runs seven tasks and prints one line for each, with its counts (one JSON object with
    /// --json):
    ///
    /// auth log: moves the module's log inbox and the files it rotated into the database (the
    /// module never does it in a login), then deletes the
    /// entries older than the log_keep_days setting, as `log purge` does (0 keeps everything).
    ///
    /// unix groups: resolves the Unix groups that groups follow, as `group sync` does
    /// (writes and audits only when members changed).
    ///
    /// inactive: folds each user's last proven second factor from the login-state files into
    /// the database, then, when inactive_after is set, disables the enabled users inactive
    /// that long (never exempt ones) in one audited change, with the `disabled` notices.
    ///
    /// notices: a fail-mode notice to admin_email (notify_admin=fail-mode) when logins ended
    /// unavailable-* since the last run or a message waited in the spool over 15 minutes; at
    /// most once a day per condition.
    ///
    /// challenges: removes every passcode challenge that expired over an hour ago (logins
    /// abandoned or killed at the prompt), and files named like one that do not parse and are
    /// over an hour old. Anything else in the directory (a symlink, a FIFO, a directory,
    /// another name) is left alone and named.
    ///
    /// login state: drops from each user's file the send times, challenge entries and
    /// repeat-window grants that left their window (failure counts, lockouts and TOTP steps
    /// stay), and removes the destination send counters idle for a day.
    ///
    /// policy snapshot: checks the file logins read against the database (checksums, owner,
    /// mode, content) and rewrites it when it is missing, stale, damaged or different, saying
    /// which.
    ///
    /// Safe beside logins and another maintain. Exit status 0 when every task ran (a
    /// rewritten snapshot included); 1 when one failed (the database cannot be opened, the
    /// snapshot cannot be made usable, a file cannot be read): its line says what to fix.
    ///
    /// The inactive task disables nobody when more than half of the enabled users (and
    /// more than 10) would go at once (a clock that jumped forward, successes that were not
    /// recorded): the run fails and says so; --allow-mass-disable disables them anyway.
    Maintain {
        /// Disable the inactive users even when they are more than half of the enabled ones
        #[arg(long)]
        allow_mass_disable: bool,
    },
    /// Write every rule as one TOML document (to FILE, or standard output)
    Export {
        /// Output file (written atomically, mode 0600)
        file: Option<PathBuf>,
    },
    /// Make the rules exactly those of a TOML document (all or nothing)
    ///
    /// Prints what changed per section (settings, services, templates, carriers, networks,
    /// groups, users: added, changed, removed). Reads format 2 (groups) and format 1
    /// documents. The members of Unix groups that imported groups follow are resolved
    /// afterwards, as `group sync` does.
    Import {
        /// Document written by `export` ('-' for standard input)
        file: PathBuf,
        /// Check the document and print what an import would change; write nothing
        #[arg(long)]
        dry_run: bool,
        /// Import a document that holds no user into a store that has users (every user is
        /// deleted); refused without it
        #[arg(long)]
        allow_no_users: bool,
    },
    /// Copy the whole store to FILE while logins go on (0600; as secret as the database)
    ///
    /// A consistent copy of the database made with SQLite's online backup API: every rule,
    /// user, contact, TOTP key, backup-code hash, the passcode key and the logs. Not the
    /// login-state files beside the database (failure counts, the newest TOTP steps used,
    /// repeat-window grants) nor the spool. FILE is created 0600 and never through a
    /// symbolic link; an existing FILE is refused unless --force.
    Backup {
        /// The file to write (not '-': a backup is binary)
        file: PathBuf,
        /// Replace FILE if it exists (a link there is replaced, not followed)
        #[arg(long)]
        force: bool,
    },
    /// Replace the whole store by a backup (the current one is kept aside)
    ///
    /// Checks FILE first (an SQLite database, its integrity check, a schema not newer than
    /// this mfa's, migrated when older, an mfa store): a bad file changes nothing (exit 2).
    /// Then keeps the current database as DATABASE.before-restore-TIME (0600), writes the
    /// backup into the database in one transaction while logins go on, and rewrites the
    /// policy snapshot and lockouts file under new generations. The login-state files stay;
    /// every TOTP user's newest accepted step is raised to now, so no code used before the
    /// restore passes again. Refused on a fleet host: a fleet's backup is its central
    /// database's.
    Restore {
        /// A file written by `mfa-admin backup`
        file: PathBuf,
    },
    /// Move this machine's store into PostgreSQL: it becomes a fleet's first generation
    ///
    /// Creates the central schema (or checks it), writes every rule of this store as the
    /// fleet's first change and ships this host's logs. Refused when the central store
    /// already holds a fleet (run `fleet join` on this host instead). The password file, CA
    /// file and host name come from the options, else from [store]; afterwards put the
    /// [store] table it prints in mfa.toml and start mfa-fleetd.
    Migrate {
        /// Where to: postgres
        #[arg(long, value_parser = ["postgres"])]
        to: String,
        /// The server: postgresql://USER@HOST:PORT/DATABASE (no password in it)
        url: String,
        /// A file holding the role's password (root only, 0600)
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// The CA certificate(s) the server's certificate must chain to (TLS)
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// This host's name in the fleet (default: the machine's host name)
        #[arg(long)]
        host: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueCmd {
    /// Pending, in-flight and failed messages (recipients masked)
    List,
    /// Put failed messages back in the queue
    #[command(group(ArgGroup::new("which").required(true).args(["id", "all_failed"])))]
    Retry {
        /// The message id (see `queue list`)
        id: Option<String>,
        /// Every failed message
        #[arg(long)]
        all_failed: bool,
    },
    /// Delete messages
    Purge {
        /// Delete every failed message
        #[arg(long, required = true)]
        failed: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TotpCmd {
    /// Give a user an authenticator key: prints the key, the otpauth:// URI and a QR code
    Enroll {
        user: String,
        /// 6 or 8
        #[arg(long, default_value = "6")]
        digits: String,
        /// sha1, sha256 or sha512 (most apps only support sha1)
        #[arg(long, default_value = "sha1")]
        algorithm: String,
        /// Also write the QR code as a PNG image
        #[arg(long, value_name = "FILE")]
        png: Option<PathBuf>,
    },
    /// Replace a user's key with a new one (the old one stops working at once)
    Reset {
        user: String,
        #[arg(long, value_name = "FILE")]
        png: Option<PathBuf>,
    },
    /// Remove a user's key
    Remove { user: String },
}

#[derive(Debug, Subcommand)]
pub enum DuoCmd {
    /// Is Duo reachable from mfa-sender? (Duo's /ping, unsigned)
    Ping,
    /// Are the integration key, secret key and API host right? (Duo's signed /check)
    Check,
    /// What Duo says of a user: auth (with their devices), allow, deny or enroll
    Preauth { user: String },
    /// Enrol a user with Duo: prints the activation link, code and expiry
    ///
    /// With --send, the activation link also goes to the user's contact through the spool
    /// (templates duo-enroll-subject and duo-enroll-body): their first email contact, their
    /// first SMS contact, or contact number N.
    Enroll {
        user: String,
        /// Send the link to the user's first email or SMS contact, or contact N
        #[arg(long, value_name = "email|sms|N")]
        send: Option<String>,
    },
    /// Whether an enrolment is done: success, waiting or invalid
    EnrollStatus {
        /// The user_id `duo enroll` printed
        user_id: String,
        /// The activation code `duo enroll` printed
        code: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SenderCmd {
    /// Heartbeat age, queue counts and the last delivery error
    Status,
}

#[derive(Debug, Subcommand)]
pub enum SettingsCmd {
    /// Show every setting with its value and default
    Show,
    /// Change settings: KEY=VALUE ... (all or none are applied)
    Set {
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
    /// Return settings to their defaults
    Reset {
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceCmd {
    /// Show the method of each service ('*' covers the others)
    List,
    /// Set a service's method: none|passcode|totp|duo|any
    Set {
        /// PAM service (sshd, vsftpd, login, su, sudo, ...) or '*'
        name: String,
        /// none|passcode|totp|duo|any
        method: String,
    },
    /// Remove a service's own rule so that '*' applies to it
    Del { name: String },
}

#[derive(Debug, Subcommand)]
pub enum NetCmd {
    /// Show trusted-network rules
    List {
        /// Only rules of this service (and '*')
        #[arg(long)]
        service: Option<String>,
    },
    /// Add a rule for a CIDR block or an address range
    Add(NetAdd),
    /// Delete a rule by its ID
    Del { id: String },
    /// Tell which rule decides for an address, and why (narrowest range wins)
    Check {
        #[arg(long)]
        service: String,
        address: String,
    },
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("where").required(true).args(["cidr", "range"])))]
pub struct NetAdd {
    /// PAM service, or '*' for every service
    #[arg(long)]
    pub service: String,
    /// A CIDR block: 10.0.0.0/24, 2001:db8::/32, or one address
    #[arg(long)]
    pub cidr: Option<String>,
    /// An address range: 10.2.2.0-10.2.2.254
    #[arg(long)]
    pub range: Option<String>,
    /// yes: 2FA required from here; no: trusted, no second factor
    #[arg(long, value_parser = parse_yes_no, value_name = "yes|no", action = clap::ArgAction::Set, required = true)]
    pub require: bool,
    /// Log level for outcomes this rule decides: all|rejects|none
    #[arg(long, value_name = "all|rejects|none")]
    pub log: Option<String>,
    /// Free text shown in listings
    #[arg(long, default_value = "")]
    pub note: String,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Show every user
    List {
        /// Only the users this group governs (own, Unix or default membership)
        #[arg(long, value_name = "GROUP")]
        group: Option<String>,
        /// Only the users without a proven second factor (nor a new record) for this long,
        /// such as 30d (the maintenance run's inactive_after, asked by hand)
        #[arg(long, value_name = "DURATION")]
        inactive: Option<String>,
    },
    /// Add a user
    Add {
        name: String,
        #[arg(long, default_value = "")]
        full_name: String,
        /// The user has Duo: under NAME, or under the login name when NAME is left out
        /// (put it after the user's name)
        #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
        duo: Option<String>,
        /// The user's own group (see `group list`)
        #[arg(long, value_name = "GROUP")]
        group: Option<String>,
    },
    /// Change a user's Duo user name (--duo [NAME] or --no-duo) or group (--group G|none)
    ///
    /// --duo: the user has Duo, under NAME (1 to 100 printable ASCII characters without
    /// spaces, such as ann@corp.example), or under the login name when NAME is left out;
    /// method any then offers Duo beside the user's other factors. --no-duo: the user is
    /// not known to have Duo (method duo still asks Duo under the login name). --group: the
    /// user's own group, which beats a followed Unix group and the default group; none
    /// returns the user to those.
    #[command(group(ArgGroup::new("what").required(true).multiple(true).args(["duo", "no_duo", "group"])))]
    Set {
        name: String,
        #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "", conflicts_with = "no_duo")]
        duo: Option<String>,
        /// The user is not known to have Duo
        #[arg(long)]
        no_duo: bool,
        /// The user's own group, or none
        #[arg(long, value_name = "GROUP|none")]
        group: Option<String>,
    },
    /// Show a user with contacts, overrides and lockout state
    Show { name: String },
    /// Delete a user with their contacts and overrides
    Del { name: String },
    /// Enable a user's second factor
    Enable { name: String },
    /// Disable a user: refused wherever a second factor is required
    Disable { name: String },
    /// End a user's lockout and clear their failure count
    Unlock { name: String },
    /// Create records in bulk: from a CSV file, or for the members of a Unix group
    ///
    /// --csv FILE ('-' for standard input): the first line names the columns, in any order:
    /// user (required), full_name, group, email, sms, phone, carrier. email and sms may hold
    /// several addresses or numbers separated by ';'; phone is a 10-digit number reached
    /// through the carrier named in carrier (see `carrier list`); at most 4 contacts a user.
    /// Fields may be quoted ("Smith, Ann"); CRLF line ends and a UTF-8 byte-order mark are
    /// accepted; the file must be UTF-8. All or nothing: any bad line (bad user name, a user
    /// twice, an unknown group or carrier, a bad address or number, too many contacts, a
    /// wrong number of fields, bytes that are not UTF-8) refuses the whole file, listing up
    /// to 20 bad lines as `line N: reason`; exit status 2 and nothing written. A user who
    /// already has a record is refused unless --update: then a non-empty full_name or group
    /// replaces theirs (group none clears it) and contacts they do not have yet are added.
    ///
    /// --unix-group GROUP: a record without contacts for each member of the Unix group (its
    /// member list and the accounts whose primary group it is) who has none, in --group
    /// MFAGROUP if given; members with records are left as they are and counted. With
    /// unassigned=enroll they enroll at their next login.
    ///
    /// --dry-run checks and prints what would be done, writing nothing. One transaction and
    /// one audit-log line per import.
    Import(UserImport),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("from").required(true).args(["csv", "unix_group"])))]
pub struct UserImport {
    /// A CSV file of users (header: user,full_name,group,email,sms,phone,carrier)
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Create records for the members of this Unix group
    #[arg(long, value_name = "GROUP")]
    pub unix_group: Option<String>,
    /// With --unix-group: the own group of the records created
    #[arg(long, value_name = "MFAGROUP", requires = "unix_group")]
    pub group: Option<String>,
    /// With --csv: update users who have records (full name, group, new contacts)
    #[arg(long, requires = "csv")]
    pub update: bool,
    /// Check and report what would be done; write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum ContactCmd {
    /// Add a contact: --email, --phone with --carrier, or --sms
    Add(ContactAdd),
    /// Show a user's contacts
    List { user: String },
    /// Delete a user's contact by its number
    Del { user: String, seq: String },
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("kind").required(true).args(["email", "phone", "sms"])))]
pub struct ContactAdd {
    pub user: String,
    /// An email address
    #[arg(long)]
    pub email: Option<String>,
    /// A 10-digit phone number reached through a carrier's email-to-SMS gateway
    #[arg(long, requires = "carrier")]
    pub phone: Option<String>,
    /// The carrier of --phone (see `carrier list`)
    #[arg(long, requires = "phone")]
    pub carrier: Option<String>,
    /// A number in E.164 form (+14155550123) for an SMS API
    #[arg(long)]
    pub sms: Option<String>,
    /// A label shown in listings (e.g. work, cell)
    #[arg(long, default_value = "")]
    pub label: String,
}

#[derive(Debug, Subcommand)]
pub enum OverrideCmd {
    /// Set a user's overrides (only the options given change)
    Set(OverrideSet),
    /// Show every override
    List,
    /// Remove a user's overrides
    Del { user: String },
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).multiple(true)
    .args(["mandatory", "exempt", "self_enroll", "log", "double_logon_contact", "factors"])))]
pub struct OverrideSet {
    pub user: String,
    /// 2FA even from trusted networks (default: the group's, else no)
    #[arg(long, value_parser = yes_no_default, value_name = "yes|no|default")]
    pub mandatory: Option<String>,
    /// Never asked for a second factor (emergency override; logged; default: the group's,
    /// else no)
    #[arg(long, value_parser = yes_no_default, value_name = "yes|no|default")]
    pub exempt: Option<String>,
    /// The factors the user may use: all, or some of passcode,totp,backup,duo (default: the
    /// group's, else all)
    #[arg(long, value_name = "LIST|default")]
    pub factors: Option<String>,
    /// May register a contact at login (default: the global setting)
    #[arg(long, value_name = "yes|no|default")]
    pub self_enroll: Option<String>,
    /// Log level for this user: all|rejects|none|default
    #[arg(long, value_name = "all|rejects|none|default")]
    pub log: Option<String>,
    /// Where a double logon (one-password services) sends its passcode: the contact's
    /// number as `contact list` shows it, or default (the first contact)
    #[arg(long, value_name = "N|default")]
    pub double_logon_contact: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// Show every group with its settings and member counts
    List,
    /// Show a group: its settings and members by why (own, Unix group, default)
    Show {
        name: String,
        /// Also list each member
        #[arg(long)]
        members: bool,
    },
    /// Create a group (1 to 64 letters, digits and . _ -)
    ///
    /// With --unix-group the Unix group's members (its member list and the accounts whose
    /// primary group it is) are resolved now, through NSS, and again by `group sync` and the
    /// hourly maintenance run.
    Add {
        name: String,
        #[command(flatten)]
        opts: GroupOpts,
    },
    /// Change a group (only the options given change; `default` unsets one)
    Set {
        name: String,
        #[command(flatten)]
        opts: GroupOpts,
    },
    /// Delete a group nobody depends on
    ///
    /// Refused while users have it as their own group, while it is the default_group, and
    /// while it follows a Unix group with members: membership decides who must prove a
    /// second factor, so there is no --force. The message says how to end each first.
    Del { name: String },
    /// Resolve the Unix groups that groups follow, now
    ///
    /// The hourly maintenance run does the same. A Unix group NSS does not know (or cannot
    /// look up) keeps the members resolved before, with a warning; members without an mfa
    /// record are listed (`user import --unix-group` creates them).
    Sync,
    /// Enable every member of a group (one audit entry with the count)
    Enable { name: String },
    /// Disable every member of a group: refused wherever 2FA is required
    Disable { name: String },
    /// Queue a test message to each member's first contact
    ///
    /// As `mfa-admin test USER`, once per member; members without a contact are listed as
    /// skipped. Test messages do not count against users' passcode send limits (a test must
    /// not keep anyone from logging in), but a group with more members to reach than
    /// send_limit_host (the messages this host may queue per hour) is refused as a whole.
    Test { name: String },
}

/// A group's settings, as `group add` and `group set` take them.
#[derive(Debug, Args)]
pub struct GroupOpts {
    /// Free text shown in listings
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Members prove a second factor even from trusted networks
    #[arg(long, value_name = "yes|no|default")]
    pub mandatory: Option<String>,
    /// Members are never asked for a second factor (logged)
    #[arg(long, value_name = "yes|no|default")]
    pub exempt: Option<String>,
    /// Members may register a contact at login (default: the global setting)
    #[arg(long, value_name = "yes|no|default")]
    pub self_enroll: Option<String>,
    /// Log level for members
    #[arg(long, value_name = "all|rejects|none|default")]
    pub log: Option<String>,
    /// The factors members may use: all, or some of passcode,totp,backup,duo
    #[arg(long, value_name = "LIST|default")]
    pub factors: Option<String>,
    /// Members of this Unix group are members (none: follow no Unix group)
    #[arg(long, value_name = "GROUP|none")]
    pub unix_group: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CarrierCmd {
    /// Show the carrier gateways
    List,
    /// Add a carrier: NAME and its gateway domain (e.g. vtext.com)
    Add { name: String, suffix: String },
    /// Delete a carrier no contact uses
    Del { name: String },
}

#[derive(Debug, Subcommand)]
pub enum TemplateCmd {
    /// Show the templates (or one)
    Show { name: Option<String> },
    /// Change a template: passcode-subject, passcode-body, test-body, duo-enroll-subject or
    /// duo-enroll-body
    Set {
        name: String,
        /// Text with placeholders {prefix} {code} {user} {host} {minutes}; the duo-enroll
        /// templates use {user} {host} {url} (the body must hold {url})
        text: String,
    },
    /// Return a template to its default text
    Reset { name: String },
}

#[derive(Debug, Subcommand)]
pub enum LogCmd {
    /// Show authentication outcomes, oldest first
    Show(LogShow),
    /// Delete old entries: --before DATE, --keep-days N, or the log_keep_days setting
    ///
    /// On a fleet host, from this host's log and from the fleet's central log (every
    /// host's entries before that time).
    Purge {
        /// Delete entries before this time (2026-01-31, '2026-01-31 12:00', RFC 3339)
        #[arg(long, conflicts_with = "keep_days")]
        before: Option<String>,
        /// Keep only the last N days
        #[arg(long)]
        keep_days: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct LogShow {
    #[arg(long)]
    pub user: Option<String>,
    /// An address, or a CIDR block / range of addresses
    #[arg(long)]
    pub address: Option<String>,
    #[arg(long)]
    pub service: Option<String>,
    /// Only this outcome: success, ignore, deny, abandoned, rate-limited, unavailable-deny,
    /// unavailable-ignore
    #[arg(long)]
    pub outcome: Option<String>,
    /// From this time (date, date and time, RFC 3339, or an age such as 2h or 7d)
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time (same forms as --since)
    #[arg(long)]
    pub until: Option<String>,
    /// Only the newest N entries
    #[arg(long)]
    pub limit: Option<String>,
    /// In a fleet: only this host's entries in the central log (which every host ships to)
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// In a fleet: read this host's own database instead of the central log
    #[arg(long, conflicts_with = "host")]
    pub local: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Show administrators' changes, oldest first
    Show {
        /// From this time (same forms as `log show --since`)
        #[arg(long)]
        since: Option<String>,
        /// Only the newest N entries
        #[arg(long)]
        limit: Option<String>,
    },
}

/// Checks yes, no or default (the value stays text: mfa-admin reads it).
fn yes_no_default(s: &str) -> Result<String, String> {
    match s.to_ascii_lowercase().as_str() {
        v @ ("yes" | "no" | "default") => Ok(v.to_string()),
        _ => Err("expected yes or no, or default (not set here)".into()),
    }
}

fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("expected yes or no".into()),
    }
}

/// `verify USER`: see its help.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The user, as mfa stores them (the login name)
    pub user: String,
    /// The rules' service name
    #[arg(long, default_value = "mfa-verify", value_name = "NAME")]
    pub service: String,
    /// The client's IP address, for trusted networks and the repeat window [default: local]
    #[arg(long, value_name = "IP")]
    pub address: Option<String>,
    /// The terminal, as PAM_TTY, for the log [default: standard input's terminal, if any]
    #[arg(long, value_name = "TTY")]
    pub tty: Option<String>,
    /// Seconds each answer may take
    #[arg(long, default_value = "300", value_name = "SECS")]
    pub timeout: String,
}

#[derive(Debug, Subcommand)]
pub enum FleetCmd {
    /// Every host of the fleet: its policy generation, last contact, queues and last error
    ///
    /// Reads the central store's hosts table, which each host's mfa-fleetd updates at every
    /// round. Columns: HOST; GENERATION, the last fleet change the host applied ("behind N"
    /// when the central store has N newer ones); LAST CONTACT, its last heartbeat, flagged
    /// "silent" past 3 times [store] poll (at least 60 s); QUEUE and FAILED, the messages
    /// waiting in and given up by its sender; OUTBOX, its own changes not yet shipped; LAST
    /// ERROR, what its last round failed on.
    ///
    /// Exit status: 0 every host is healthy (or none has reported yet); 1 a host needs
    /// attention: silent, behind for over 60 s, or with a last error (each is named on
    /// standard error; the table or JSON is printed first), or the central store cannot be
    /// reached; 2 this host is not in a fleet.
    Status,
    /// Make this host a member of the fleet named in [store]: its rules become the fleet's
    ///
    /// Applies every change of the central store to this host's database (its own rules are
    /// replaced; refused while it holds users or network rules of its own, unless
    /// --replace-local-rules), then start mfa-fleetd to keep it in step.
    Join {
        /// Replace this host's own users and rules with the fleet's
        #[arg(long)]
        replace_local_rules: bool,
    },
    /// Ship this host's changes and apply the fleet's now (mfa-fleetd does it continuously)
    Sync,
}
