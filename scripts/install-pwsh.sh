#!/usr/bin/env bash
# Installs what the Pester tests need on a fresh machine, from NuGet only (no PowerShell Gallery):
#   PowerShell 7.6.10 as a .NET tool into .tools/pwsh (pinned: 7.7.0 does not run here), and
#   Pester 5.9.1 through a throwaway project's PackageDownload restore (its module is under tools/).
# Prints two lines: "pwsh=<path>" and "pester=<path to Pester.psd1>". Reuses earlier installs.
set -euo pipefail
cd "$(dirname "$0")/.."

pwsh_version=7.6.10
pester_version=5.9.1
tools="$PWD/.tools"
mkdir -p "$tools"

pwsh="$tools/pwsh/pwsh"
if [ ! -x "$pwsh" ] || ! "$pwsh" -NoProfile -NonInteractive -Command '$PSVersionTable.PSVersion.ToString()' 2>/dev/null | grep -qx "$pwsh_version"; then
  rm -rf "$tools/pwsh"
  dotnet tool install --tool-path "$tools/pwsh" PowerShell --version "$pwsh_version" >&2
fi

packages=$(dotnet nuget locals global-packages --list | sed -E 's/^global-packages: *//; s:/*$::')
pester="$packages/pester/$pester_version/tools/Pester.psd1"
if [ ! -f "$pester" ]; then
  # Outside the repository, so its Directory.*.props (central versions, warnings as errors) stay out.
  restore=$(mktemp -d)
  trap 'rm -rf "$restore"' EXIT
  cat > "$restore/pester-restore.csproj" <<PROJ
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>
  <ItemGroup><PackageDownload Include="Pester" Version="[$pester_version]" /></ItemGroup>
</Project>
PROJ
  dotnet restore "$restore/pester-restore.csproj" -nologo -v quiet >&2
fi
if [ ! -f "$pester" ]; then
  echo "install-pwsh: Pester $pester_version did not arrive at $pester" >&2
  exit 1
fi
echo "pwsh=$pwsh"
echo "pester=$pester"
