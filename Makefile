# mfa: build, test and install entry points. `make test` is the one command CI runs.
#
#   make                      build the release binaries (as your user: cargo is usually in ~/.cargo)
#   sudo make install         install them (see "install" below for what goes where)
#   sudo make uninstall       remove exactly what install put there
#   make test                 lint, every cargo test, the installed-system and package suites (root)
#   make deb                  the Debian packages (dpkg-buildpackage), collected in target/deb/
#   make test-package         make deb, then install/upgrade/purge them in a throwaway root
#   make generated            rewrite mfa-admin(8) and the shell completions from the CLI
#
# install honours DESTDIR (staging root for packages) and PREFIX (default /usr/local).
# It does not run `mfa-admin init`, create the system user `mfa`, touch /etc, enable the
# unit or edit any pam.d file: that is the administrator's step (`sudo mfa-admin init`).

CARGO ?= cargo

PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
# The setuid-root helper pam_mfa runs when PAM is called without root (PostgreSQL): the
# module looks for it in /usr/lib/mfa and /usr/local/lib/mfa.
LIBEXECDIR ?= $(PREFIX)/lib/mfa
DOCDIR ?= $(PREFIX)/share/doc/mfa
EXAMPLESDIR ?= $(DOCDIR)/examples
UNITDIR ?= /lib/systemd/system
MANDIR ?= $(PREFIX)/share/man
# Where each shell looks for completions (zsh: Debian's vendor directory for /usr, the
# site directory zsh searches for /usr/local).
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/share/zsh/vendor-completions,$(PREFIX)/share/zsh/site-functions)
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
# PAM modules live in the multiarch directory libpam searches (/lib/x86_64-linux-gnu/security
# on Debian amd64), whatever PREFIX says: libpam does not look in /usr/local.
MULTIARCH := $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null)
PAMDIR ?= $(if $(MULTIARCH),/lib/$(MULTIARCH)/security,/lib/security)

# Which build install copies from: release (default) or debug.
PROFILE ?= release
OUT := target/$(PROFILE)
CARGO_PROFILE := $(if $(filter release,$(PROFILE)),--release,)
# NO_BUILD=1: install what $(OUT) already holds without running cargo (the installed-system
# suite does, inside its mount namespace, so nothing is built twice).
NO_BUILD ?=

BINARIES := mfa-admin mfa-sender mfa-fleetd
# mfa-fleetd.service is for fleet hosts only: installed, never enabled by install or the package.
UNITS := mfa-sender.service mfa-maintenance.service mfa-maintenance.timer mfa-fleetd.service
MAN5 := docs/man/mfa.toml.5
MAN8 := docs/man/pam_mfa.8 docs/man/mfa-admin.8 docs/man/mfa-sender.8 docs/man/mfa-fleetd.8
# Example files, relative to etc/: installed under $(EXAMPLESDIR) with the same layout.
EXAMPLES := mfa.toml $(patsubst etc/%,%,$(wildcard etc/pam.d/* etc/ssh/sshd_config.d/*))

# Every file install writes; uninstall removes exactly these.
FILES = $(addprefix $(SBINDIR)/,$(BINARIES)) $(PAMDIR)/pam_mfa.so $(LIBEXECDIR)/mfa-check $(addprefix $(UNITDIR)/,$(UNITS)) \
  $(addprefix $(MANDIR)/man5/,$(notdir $(MAN5))) $(addprefix $(MANDIR)/man8/,$(notdir $(MAN8))) \
  $(BASHCOMPDIR)/mfa-admin $(ZSHCOMPDIR)/_mfa-admin $(FISHCOMPDIR)/mfa-admin.fish \
  $(addprefix $(EXAMPLESDIR)/,$(EXAMPLES)) $(DOCDIR)/json.md
# Those of FILES a Debian package owns (the packages share the module's and the units'
# paths with a source install): install refuses to overwrite them, uninstall keeps them.
# Only for the real root (no DESTDIR) and where dpkg is.
OWNED = $(if $(DESTDIR),,$(shell command -v dpkg >/dev/null 2>&1 && \
  for f in $(FILES); do dpkg -S "$$f" >/dev/null 2>&1 && echo "$$f"; done))

.PHONY: all build test test-cargo test-installed test-package deb generated lint fmt install \
	install-ready uninstall print-pamdir

all: build

build:
	$(CARGO) build --workspace $(CARGO_PROFILE) --locked

# Builds and runs every test: unit tests and the integration tests that drive the binaries,
# then the installed-system suite against the debug binaries those tests just built.
test: test-cargo
	$(MAKE) --no-print-directory test-installed PROFILE=debug NO_BUILD=1
	$(MAKE) --no-print-directory test-package

test-cargo: lint
	# The PAM tests load target/debug/libpam_mfa.so: build every target first.
	$(CARGO) build --workspace --all-targets --locked
	$(CARGO) test --workspace --all-targets --locked
	$(CARGO) test --workspace --doc --locked
	# The CLI suite again with every test's installation a fleet host through PostgreSQL
	# (mfa-admin/tests/cli/backend.rs).
	MFA_TEST_BACKEND=postgres $(CARGO) test -p mfa-admin --test cli --locked
	# A short pass of every fuzz target (fuzz/: the debug build, overflow checks on; about 40 s);
	# bench/fuzz.sh runs the long one.
	$(CARGO) run -q -p mfa-fuzz --locked -- --all --seconds 3

# tests/installed/: `make install` into the real paths of a throwaway root (a mount
# namespace), real users, su/sudo/login/sshd on a pseudo-terminal. Needs root; skips without.
test-installed:
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "SKIP test-installed: needs root (it installs mfa into a private mount namespace; run: sudo make test-installed)"; \
	  exit 0; \
	fi; \
	$(if $(NO_BUILD),,$(CARGO) build --workspace $(CARGO_PROFILE) --locked &&) \
	MFA_PROFILE=$(PROFILE) tests/installed/run.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

# Builds when cargo is at hand (`sudo make install` usually has no cargo in its PATH: then
# the binaries of an earlier `make` are installed), and stops when a binary is missing.
install-ready:
ifeq ($(NO_BUILD),)
	@if command -v $(CARGO) >/dev/null 2>&1; then \
	  echo "$(CARGO) build --workspace $(CARGO_PROFILE) --locked"; \
	  $(CARGO) build --workspace $(CARGO_PROFILE) --locked; \
	else \
	  echo "$(CARGO) not found in PATH: installing the binaries already built in $(OUT)/"; \
	fi
endif
	@for f in $(addprefix $(OUT)/,$(BINARIES) mfa-check libpam_mfa.so); do \
	  [ -f "$$f" ] || { echo "missing $$f: run 'make' (as the user that has cargo) first" >&2; exit 1; }; \
	done

install: install-ready
	@owned='$(strip $(OWNED))'; if [ -n "$$owned" ]; then \
	  echo "refusing to overwrite files of mfa's Debian packages (installed with apt):" >&2; \
	  for f in $$owned; do echo "    $$f" >&2; done; \
	  echo "remove the packages first (apt-get remove mfa libpam-mfa), or install elsewhere (PREFIX=, PAMDIR=, UNITDIR=)" >&2; \
	  exit 1; \
	fi
	install -d -m 0755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(PAMDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(LIBEXECDIR) \
	  $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0755 $(addprefix $(OUT)/,$(BINARIES)) $(DESTDIR)$(SBINDIR)/
	install -m 0644 $(OUT)/libpam_mfa.so $(DESTDIR)$(PAMDIR)/pam_mfa.so
	# setuid root (pam_mfa(8), UNPRIVILEGED CALLERS): root:root when root installs; a
	# package build (DESTDIR, not root) gets root:root from dpkg-deb.
	install -m 4755 $(OUT)/mfa-check $(DESTDIR)$(LIBEXECDIR)/mfa-check
	# The units start the binaries from where they were installed.
	for u in $(UNITS); do \
	  sed 's|/usr/sbin/mfa-|$(SBINDIR)/mfa-|g' etc/$$u > $(DESTDIR)$(UNITDIR)/$$u.tmp && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && \
	  mv -f $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 etc/completions/mfa-admin.bash $(DESTDIR)$(BASHCOMPDIR)/mfa-admin
	install -m 0644 etc/completions/_mfa-admin $(DESTDIR)$(ZSHCOMPDIR)/_mfa-admin
	install -m 0644 etc/completions/mfa-admin.fish $(DESTDIR)$(FISHCOMPDIR)/mfa-admin.fish
	for f in $(EXAMPLES); do \
	  install -D -m 0644 etc/$$f $(DESTDIR)$(EXAMPLESDIR)/$$f || exit 1; \
	done
	install -m 0644 docs/json.md $(DESTDIR)$(DOCDIR)/json.md
	@echo
	@echo "Installed. Next (as root): mfa-admin init; see $(EXAMPLESDIR) and the README's Quick start."
	@echo "With systemd (after init): systemctl daemon-reload &&"
	@echo "  systemctl enable --now mfa-sender.service mfa-maintenance.timer"
	@echo "A fleet host (after mfa-admin migrate --to postgres URL, or fleet join):"
	@echo "  systemctl enable --now mfa-fleetd.service"

# Where install puts pam_mfa.so (tests/installed/namespace.sh asks).
print-pamdir:
	@echo $(PAMDIR)

# Removes the binaries, the module, the unit and the examples directory; the configuration
# (/etc/mfa), the database (/var/lib/mfa), the spool (/var/spool/mfa), the user `mfa` and any
# pam.d line stay. To remove those too: take pam_mfa out of /etc/pam.d first (or nobody can
# log in where it is `required`), then rm -r /etc/mfa /var/lib/mfa /var/spool/mfa /run/mfa
# and deluser --system mfa.
uninstall:
	# Exactly FILES (EXAMPLESDIR may be overridden: never rm -r it), except what a package
	# owns, then the example directories they leave empty.
	@owned=' $(strip $(OWNED)) '; for f in $(addprefix $(DESTDIR),$(FILES)); do \
	  case "$$owned" in \
	    *" $$f "*) echo "kept $$f: it belongs to mfa's Debian packages (apt-get remove mfa libpam-mfa)";; \
	    *) rm -f "$$f" || exit 1;; \
	  esac; \
	done
	for d in pam.d ssh/sshd_config.d ssh; do rmdir $(DESTDIR)$(EXAMPLESDIR)/$$d 2>/dev/null || true; done
	rmdir $(DESTDIR)$(EXAMPLESDIR) 2>/dev/null || true
	rmdir $(DESTDIR)$(LIBEXECDIR) 2>/dev/null || true
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	@if [ -z "$(DESTDIR)" ] && grep -rlsE '^[^#]*pam_mfa\.so' /etc/pam.d; then \
	  echo "warning: the pam.d files above still name pam_mfa.so, which is gone: remove those lines" >&2; \
	fi

# The Debian packages (debian/): dpkg-buildpackage writes to the parent directory; the
# results are moved to target/deb/ (the previous ones removed first).
DEB_VERSION = $(shell dpkg-parsechangelog -S Version 2>/dev/null)
deb:
	@command -v dpkg-buildpackage >/dev/null || { echo "dpkg-buildpackage not found: apt-get install dpkg-dev debhelper" >&2; exit 1; }
	dpkg-buildpackage -us -uc -b
	rm -rf target/deb
	mkdir -p target/deb
	mv ../mfa_$(DEB_VERSION)_*.deb ../libpam-mfa_$(DEB_VERSION)_*.deb \
	  ../mfa_$(DEB_VERSION)_*.buildinfo ../mfa_$(DEB_VERSION)_*.changes target/deb/
	@ls -l target/deb

# tests/package/: the packages of `make deb` installed, used, upgraded and purged in a
# throwaway root (as root; skips without root or dpkg).
# lintian first: no error, and every warning fixed or overridden with its reason
# (debian/*.lintian-overrides).
test-package:
	@if ! command -v dpkg-buildpackage >/dev/null; then \
	  echo "SKIP test-package: no dpkg-buildpackage (not a Debian system, or apt-get install dpkg-dev debhelper)"; \
	  exit 0; \
	fi; \
	$(MAKE) --no-print-directory deb && \
	lintian --fail-on error,warning --pedantic target/deb/mfa_$(DEB_VERSION)_*.changes && \
	tests/package/run.sh

# mfa-admin(8) and the bash, zsh and fish completions come from the clap definition
# (mfa-admin/src/cli.rs); a unit test fails when the committed files are stale.
generated:
	MFA_REGENERATE=1 $(CARGO) test -p mfa-admin --locked --bin mfa-admin generated::
