#!/usr/bin/env bash
# Prints scanagent(1) in roff: the command list is the binary's own
# `scanagent help`, so the page never disagrees with the program.
# Usage: packaging/linux/manpage.sh BINARY VERSION > scanagent.1
set -euo pipefail
bin=${1:?usage: manpage.sh BINARY VERSION} version=${2:?version}
date=$(git -C "$(dirname "$0")" log -1 --format=%cs 2>/dev/null || date +%F)
cat <<MAN
.TH SCANAGENT 1 "$date" "scanagent $version" "User Commands"
.SH NAME
scanagent \\- barcode agent for hospital counters and kiosks
.SH SYNOPSIS
.B scanagent
.I command
.RI [ flags ]
.SH DESCRIPTION
scanagent reads the codes patients show (e\\-Health Card, Su Kang Code, ID card,
hospital card) from serial, HID\\-POS or keyboard\\-wedge scanners, verifies them
with the e\\-Health Card platform and hands the identity to the hospital
information system (HIS); usage reports go through a durable outbox.
.SH COMMANDS
.nf
MAN
"$bin" help 2>&1 | sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
cat <<'MAN'
.fi
.SH FILES
.TP
.I /etc/scanagent/scanagent.toml
the configuration (\fBscanagent config sample\fR prints every option)
.TP
.I /var/lib/scanagent/outbox.db
the outbox: usage reports not yet accepted by the platform
.SH EXIT STATUS
0 success, 1 failure, 2 bad command line.
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1),
.I /usr/share/doc/scanagent/README.md
MAN
