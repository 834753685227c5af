#!/usr/bin/env bash
# Installs what the Pester tests need on a fresh machine, from NuGet only (no PowerShell Gallery):
#   PowerShell 7.6.10 as a .NET tool into .tools/pwsh (pinned: 7.7.0 does not run here), and
#   Pester 5.9.1 through a throwaway project's PackageDownload restore (scripts/nuget-download.sh;
#   its module is under tools/), and, the same way, AWSSDK.Core 3.7 (the AWS.Tools generation), which the module-isolation test
#   loads into pwsh before PSBackup (whose dependencies are AWSSDK.Core 4).
# Prints three lines: "pwsh=<path>", "pester=<path to Pester.psd1>" and "awssdk3=<folder of the
# AWSSDK.Core 3.x package>". Reuses earlier installs.
set -euo pipefail
cd "$(dirname "$0")/.."

pwsh_version=7.6.10
pester_version=5.9.1
awssdk3_version=3.7.402
tools="$PWD/.tools"
mkdir -p "$tools"

pwsh="$tools/pwsh/pwsh"
if [ ! -x "$pwsh" ] || ! "$pwsh" -NoProfile -NonInteractive -Command '$PSVersionTable.PSVersion.ToString()' 2>/dev/null | grep -qx "$pwsh_version"; then
  rm -rf "$tools/pwsh"
  dotnet tool install --tool-path "$tools/pwsh" PowerShell --version "$pwsh_version" >&2
fi

packages=$(bash scripts/nuget-download.sh "Pester=$pester_version" "AWSSDK.Core=$awssdk3_version")
pester="$packages/pester/$pester_version/tools/Pester.psd1"
awssdk3="$packages/awssdk.core/$awssdk3_version"
if [ ! -f "$pester" ]; then
  echo "install-pwsh: Pester $pester_version did not arrive at $pester" >&2
  exit 1
fi
echo "pwsh=$pwsh"
echo "pester=$pester"
echo "awssdk3=$awssdk3"
