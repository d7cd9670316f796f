#!/usr/bin/env bash
# Builds the scanagent MSI from scanagent.wxs with wixl, then sets with
# msibuild what wixl cannot express:
#   - SampleConfig component: Permanent (0x10) | NeverOverwrite (0x80) |
#     64-bit (0x100) = 400, so the hospital's edited scanagent.toml survives
#     upgrades (NeverOverwrite) and uninstall (Permanent);
#   - the major-upgrade detection row includes the product's own version
#     (VersionMaxInclusive 0x200), so 1.2.3-rc.1 -> 1.2.3 (same a.b.c in the
#     MSI) replaces the older build instead of installing beside it.
# Then checks the tables it relies on.
# Usage: packaging/windows/build-msi.sh VERSION EXE CONFIG OUT.msi
# Needs wixl, msibuild, msiinfo (Debian: wixl msitools).
set -euo pipefail
version=${1:?usage: build-msi.sh VERSION EXE CONFIG OUT.msi} exe=${2:?exe} config=${3:?config} out=${4:?out.msi}
root=$(cd "$(dirname "$0")/../.." && pwd)
eval "$("$root/packaging/versions.sh" "$version")" # filever, numver
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# wixl 0.101 finds sources by relative path only: build in a scratch folder.
cp "$exe" "$work/scanagent.exe"
cp "$root/README.md" "$work/README.md"
cp "$config" "$work/scanagent.toml"
cp "$root/packaging/windows/scanagent.wxs" "$work/scanagent.wxs"
(cd "$work" && wixl -a x64 -D Version="$numver" -D FullVersion="$filever" -D ExePath=scanagent.exe \
  -D ReadmePath=README.md -D ConfigPath=scanagent.toml -o scanagent.msi scanagent.wxs) \
  2> >(grep -v -e '^$' -e 'GLib-GObject-WARNING' >&2 || true)
mv "$work/scanagent.msi" "$out"
sql() { msibuild "$out" -q "$1"; }
sql "UPDATE \`Component\` SET \`Attributes\` = 400 WHERE \`Component\` = 'SampleConfig'"
# Attributes is part of the Upgrade table's key: replace the row.
upgradecode=$(msiinfo export "$out" Property | tr -d '\r' | awk -F'\t' '$1 == "UpgradeCode" {print $2}')
sql "DELETE FROM \`Upgrade\` WHERE \`ActionProperty\` = 'WIX_UPGRADE_DETECTED'"
sql "INSERT INTO \`Upgrade\` (\`UpgradeCode\`, \`VersionMax\`, \`Attributes\`, \`ActionProperty\`) VALUES ('$upgradecode', '$numver', 513, 'WIX_UPGRADE_DETECTED')"
# The exe's version (its VERSIONINFO, see build-exe.sh), so that a repair
# compares versions, not dates (wixl 0.101 ignores File/@DefaultVersion).
sql "UPDATE \`File\` SET \`Version\` = '$numver.0' WHERE \`File\` = 'ScanagentExe'"
# Remove the old version first (wixl may put it after InstallFinalize, where the
# old product's uninstall would delete the service the new one just installed).
sql "UPDATE \`InstallExecuteSequence\` SET \`Sequence\` = 1401 WHERE \`Action\` = 'RemoveExistingProducts'"
# Recovery: sc.exe from System32, deferred, as LocalSystem (34 exe-in-directory
# + 0x400 in-script + 0x800 no-impersonate), failing the install if it fails;
# after InstallServices (5800), before StartServices (5900).
msiinfo tables "$out" | grep -qx CustomAction ||
  sql "CREATE TABLE \`CustomAction\` (\`Action\` CHAR(72) NOT NULL, \`Type\` INT NOT NULL, \`Source\` CHAR(72), \`Target\` CHAR(255), \`ExtendedType\` LONG PRIMARY KEY \`Action\`)"
recovery='"[System64Folder]sc.exe" failure scanagent reset= 86400 actions= restart/5000/restart/30000/restart/60000'
sql "INSERT INTO \`CustomAction\` (\`Action\`, \`Type\`, \`Source\`, \`Target\`) VALUES ('ScanagentRecovery', 3106, 'System64Folder', '$recovery')"
sql "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Condition\`, \`Sequence\`) VALUES ('ScanagentRecovery', 'NOT REMOVE~=\"ALL\"', 5850)"

# What the installer's behaviour depends on, as built.
fail() { echo "build-msi: $*" >&2; exit 1; }
table() { msiinfo export "$out" "$1" | tail -n +4 | tr -d '\r'; }
table Component | grep -qP '^SampleConfig\t[^\t]*\tDATADIR\t400\t' || fail "SampleConfig is not Permanent|NeverOverwrite|64-bit"
table Upgrade | grep -qP '\t513\t.*WIX_UPGRADE_DETECTED' || fail "the upgrade row does not include the same version"
table Property | grep -qxP "ProductName\tscanagent $filever" || fail "ProductName is not 'scanagent $filever'"
table Property | grep -qxP "ProductVersion\t$numver" || fail "ProductVersion is not $numver"
table LaunchCondition | grep -qF 'WINDOWSBUILDNUMBER >= 10240' || fail "no Windows 10 launch condition"
table CustomAction | grep -qxF "ScanagentRecovery	3106	System64Folder	$recovery	" || fail "no recovery custom action"
seq() { table InstallExecuteSequence | awk -F'\t' -v a="$1" '$1 == a {print $3}'; }
[ "$(seq RemoveExistingProducts)" -lt "$(seq InstallInitialize)" ] || fail "RemoveExistingProducts is not before InstallInitialize"
[ "$(seq InstallServices)" -lt "$(seq ScanagentRecovery)" ] && [ "$(seq ScanagentRecovery)" -lt "$(seq StartServices)" ] ||
  fail "the recovery custom action is not between InstallServices and StartServices"
table Registry | grep -qF 'EventMessageFile	#%%SystemRoot%\System32\EventCreate.exe' || fail "no event log source (REG_EXPAND_SZ EventMessageFile)"
table File | grep -qP "^ScanagentExe\t.*\t$numver\.0\t" || fail "scanagent.exe has no file version"
table ServiceInstall | cut -f2,3,9 | sed 's/^/   service: /'
