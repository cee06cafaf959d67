#!/usr/bin/python3
"""Check the Containerfile and compose.yaml without a container engine: what can be checked mechanically.

    deploy/check-container.py BUILD_DIR

hadolint is not packaged for Debian 12, and no engine runs here, so this
checks what the image and the stack depend on (the rest is the review
checklist in deploy/README.md, "Containers"):

- Containerfile: two stages FROM debian:12-slim; the runtime stage installs
  no -dev package, --no-install-recommends and cleans the apt lists in the
  same RUN; every COPY source exists in the repository; a non-root USER;
  every EXPOSEd port is one the compose file publishes or uses.
- runtime libraries: every shared library the installed programs load (ldd
  after `meson install` of BUILD_DIR into a temporary directory) belongs to a package the runtime stage
  installs, or to one of their dependencies already in debian:12-slim
  (libc6 and the like), as the host's dpkg database says.
- compose.yaml: every command's program is in the meson install set at the
  path the image puts it; every --config FILE under /etc/griddispatch is in
  deploy/compose/ and passes --check-config with the built program; every
  published port is the port its config file listens on; endpoints name the
  broker's ports from its config; every service but postgres uses the image.

Prints one line per problem and exits 1; exits 0 with a summary otherwise.
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CONTAINERFILE = REPO / "deploy" / "container" / "Containerfile"
COMPOSE = REPO / "deploy" / "compose.yaml"
CONFIGS = REPO / "deploy" / "compose"
# in debian:12-slim already (Priority: required/important and their libraries)
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "libzstd1", "zlib1g", "libgmp10",
                 "libmd0", "libbsd0", "libsystemd0", "liblz4-1", "liblzma5", "libgcrypt20",
                 "libgpg-error0", "libcap2", "libselinux1", "libpcre2-8-0", "libacl1",
                 "libattr1", "libtinfo6", "libudev1", "libcrypt1", "libaudit1", "libcap-ng0",
                 "libp11-kit0", "libffi8", "libtasn1-6", "libhogweed6", "libnettle8",
                 "libidn2-0", "libunistring2", "libgnutls30", "libseccomp2", "libdb5.3",
                 "libsemanage2", "libsepol2", "libbz2-1.0", "libpam0g"}

problems = []


def problem(msg):
    problems.append(msg)
    print(f"check-container: {msg}")


def containerfile():
    text = CONTAINERFILE.read_text()
    lines = re.sub(r"\\\n\s*", " ", text).splitlines()
    stages, current = {}, None
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            current = m.group(2) or str(len(stages))
            stages[current] = {"from": m.group(1), "lines": []}
        stages[current]["lines"].append((op, rest))
    if [s["from"] for s in stages.values()] != ["debian:12-slim"] * 2:
        problem(f"want two stages FROM debian:12-slim, not {[s['from'] for s in stages.values()]}")
    runtime = list(stages.values())[-1]["lines"]
    packages = set()
    for op, rest in runtime:
        if op == "RUN" and "apt-get install" in rest:
            if "--no-install-recommends" not in rest:
                problem("runtime apt-get install without --no-install-recommends")
            if "rm -rf /var/lib/apt/lists/*" not in rest:
                problem("runtime apt-get install leaves /var/lib/apt/lists")
            packages |= {w for w in rest.split("install", 1)[1].split("&&")[0].split()
                         if not w.startswith("-")}
    dev = sorted(p for p in packages if p.endswith("-dev"))
    if dev:
        problem(f"runtime stage installs development packages {dev}")
    users = [rest for op, rest in runtime if op == "USER"]
    if not users or users[-1] in ("root", "0"):
        problem("runtime stage runs as root (no USER)")
    for stage in stages.values():
        for op, rest in stage["lines"]:
            if op == "COPY" and not rest.startswith("--from"):
                for src in rest.split()[:-1]:
                    if not (REPO / src).exists():
                        problem(f"COPY {src}: not in the repository")
    exposed = {int(p) for op, rest in runtime if op == "EXPOSE" for p in rest.split()}
    return packages, exposed


def installed(build, destdir):
    """Installed path -> file, from `meson install` of BUILD into DESTDIR."""
    subprocess.run(["meson", "install", "-C", str(build), "--no-rebuild", "--quiet"],
                   env={**os.environ, "DESTDIR": str(destdir)}, check=True,
                   stdout=subprocess.DEVNULL)
    return {"/" + str(f.relative_to(destdir)): str(f)
            for f in Path(destdir).rglob("*") if f.is_file()}


def runtime_libraries(install, packages):
    """Every library of every installed program comes from `packages` or the base image."""
    allowed = packages | BASE_PACKAGES
    libs = set()
    for dest, src in install.items():
        if dest.startswith("/usr/local/bin/"):
            out = subprocess.run(["ldd", src], capture_output=True, text=True).stdout
            libs |= {m.group(1) for m in re.finditer(r"=>\s+(/\S+)", out)}
    needed = {}
    for lib in sorted(libs):
        r = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True)
        if r.returncode != 0:
            r = subprocess.run(["dpkg", "-S", str(Path(lib).resolve())], capture_output=True,
                               text=True)
        if r.returncode != 0:
            problem(f"{lib}: no Debian package owns it")
            continue
        needed[lib] = r.stdout.split(":")[0]
    # a library pulled in by an installed package's dependencies is fine too
    closure = set(allowed)
    r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
                        *sorted(packages)], capture_output=True, text=True)
    if r.returncode != 0:
        problem(f"apt-cache depends: {r.stderr.strip()}")
    else:
        for line in r.stdout.splitlines():
            name = line.strip().removeprefix("Depends:").removeprefix("PreDepends:").strip()
            if name and not name.startswith("<") and " " not in name:
                closure.add(name)
    for lib, pkg in needed.items():
        if pkg not in closure:
            problem(f"{lib} (package {pkg}) is not installed in the runtime stage")
    return len(libs)


def compose(install, exposed, workdir):
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    published = set()
    n_configs = 0
    for name, svc in services.items():
        if name == "postgres":
            if svc.get("image") != "postgres:15":
                problem("postgres: want image postgres:15")
            continue
        if svc.get("image") != "griddispatch:0.1.0":
            problem(f"{name}: does not use the griddispatch image")
        cmd = svc.get("command") or []
        if not cmd or cmd[0] not in install:
            problem(f"{name}: {cmd[:1]} is not in the meson install set")
            continue
        ports = {int(p.split(":")[-1]) for p in svc.get("ports", [])}
        published |= ports
        if "--config" not in cmd:
            problem(f"{name}: no --config")
            continue
        path = cmd[cmd.index("--config") + 1]
        local = CONFIGS / Path(path).relative_to("/etc/griddispatch")
        if not local.exists():
            problem(f"{name}: {path} is not in deploy/compose/")
            continue
        text = local.read_text().replace("/etc/griddispatch/", f"{CONFIGS}/")
        tmp = Path(workdir) / local.name
        tmp.write_text(text)
        # the built program, the config from deploy/compose/, the rest of the command
        rest = [a for a in cmd[1:] if a not in ("--config", path)]
        if "--migrations" in rest:
            i = rest.index("--migrations")
            dest = rest[i + 1]
            src = REPO / "broker" / "sql"
            if not any(d.startswith(dest + "/") and d.endswith(".sql") for d in install):
                problem(f"{name}: {dest} is not installed by meson")
            rest[i + 1] = str(src)
        r = subprocess.run([install[cmd[0]], "--config", str(tmp), *rest, "--check-config"],
                           capture_output=True, text=True,
                           env={"PATH": "/usr/bin:/bin"})
        n_configs += 1
        if r.returncode != 0:
            problem(f"{name}: --check-config: {r.stderr.strip()}")
            continue
        listen = set()
        for line in r.stdout.splitlines():
            m = re.match(r"(intake|work|status|http|port) = (.*)", line)
            if m and (m.group(1) == "port" or "*" in m.group(2) or "0.0.0.0" in m.group(2)):
                listen.add(int(m.group(2).rsplit(":", 1)[-1]))
            if m and m.group(1) in ("intake", "work", "status") and "broker:" in m.group(2):
                want = {"intake": 7701, "work": 7702, "status": 7703}[m.group(1)]
                for ep in m.group(2).split(","):
                    if int(ep.rsplit(":", 1)[1]) != want:
                        problem(f"{name}: {m.group(1)} {ep.strip()} is not the broker's {want}")
        if ports - listen:
            problem(f"{name}: publishes {sorted(ports - listen)} but listens on {sorted(listen)}")
    if exposed - published:
        problem(f"Containerfile EXPOSEs {sorted(exposed - published)} that no service publishes")
    return len(services), n_configs


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    with tempfile.TemporaryDirectory(prefix="gd-container.") as tmp:
        install = installed(sys.argv[1], Path(tmp) / "root")
        packages, exposed = containerfile()
        n_libs = runtime_libraries(install, packages)
        n_services, n_configs = compose(install, exposed, tmp)
    if problems:
        sys.exit(1)
    print(f"check-container: Containerfile ok ({len(packages)} runtime packages cover "
          f"{n_libs} libraries); compose.yaml ok ({n_services} services, {n_configs} configs "
          f"pass --check-config)")


if __name__ == "__main__":
    main()
