// Shared by the browser tests: a scratch folder, `lufa` commands, and a `lufa serve` on a free port.
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, rmSync, existsSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const buildDir = process.env.LUFA_BUILD_DIR || join(root, "build");
export const lufaBin = join(buildDir, "lufa");
export const factory = join(root, "tests/browser/factory");
export const activities = join(root, "tests/browser/activities");
export const chromiumPath = "/usr/bin/chromium";

// The test's output folder (screenshots, store), emptied first.
export function outputDir(name) {
  const dir = join(buildDir, "test-output", "browser", name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function lufa(args, env = {}) {
  try {
    return execFileSync(lufaBin, args, { encoding: "utf8", env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    if (e.status === 1) return e.stdout;   // a failed run is what some tests want
    throw new Error(`lufa ${args.join(" ")} exited ${e.status}: ${e.stderr}`);
  }
}

// Starts `lufa serve` and resolves with {url, base, proc, stop()} once it printed its address.
export function serve(args) {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(lufaBin, ["serve", "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/ at (http:\/\/\S+)/);
      if (m) {
        const url = m[1];
        const base = url.replace(/\?.*$/, "").replace(/\/$/, "");
        resolvePromise({ url, base, proc, stderr: () => err, stop: () => stopProcess(proc) });
      }
    });
    proc.stderr.on("data", (d) => { err += d; });
    proc.on("exit", (code) => reject(new Error(`lufa serve exited ${code} before it listened: ${err}`)));
  });
}

function stopProcess(proc) {
  return new Promise((done) => {
    if (proc.exitCode !== null) return done(proc.exitCode);
    proc.on("exit", (code) => done(code));
    proc.kill("SIGTERM");
  });
}

export function launchArgs() {
  if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} is missing: scripts/deps installs Debian's chromium`);
  const args = ["--disable-gpu", "--disable-dev-shm-usage"];
  if (process.getuid && process.getuid() === 0) args.push("--no-sandbox");   // Chromium refuses its sandbox as root
  return { executablePath: chromiumPath, headless: true, args };
}
