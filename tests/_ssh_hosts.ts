/**
 * Test infrastructure for SSH workers: private `sshd` instances on loopback
 * and network-namespace "machines" with their own address and `/tmp`.
 *
 * Everything here follows `shared/notes/ssh-test-hosts.md`: key-only root
 * login, `MaxStartups 200`, `StreamLocalBindUnlink yes`,
 * `ClientAliveInterval 1`, temp dirs under `/var/tmp` (never `/tmp`, which
 * namespace hosts replace with a private tmpfs), and a blackhole guard route
 * for `10.213.0.0/16` that is in place before any test link can go down.
 *
 * Traffic only ever goes to `127.0.0.1` and to the `10.213.k.2` addresses
 * created here.
 *
 * @example Skip loudly when sshd is missing
 * ```ts ignore
 * import { skipMessage, sshPrerequisites, startSshHost } from "./_ssh_hosts.ts";
 *
 * const reason = await sshPrerequisites();
 * if (reason !== null) skipMessage("ssh tests", reason);
 * Deno.test({
 *   name: "SshHost.exec() runs a command",
 *   ignore: reason !== null,
 *   async fn() {
 *     await using host = await startSshHost();
 *     const { stdout } = await host.exec("echo ok");
 *     if (stdout !== "ok\n") throw new Error(stdout);
 *   },
 * });
 * ```
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Absolute path of the OpenSSH server; sshd refuses to re-exec from a relative path. */
const SSHD = "/usr/sbin/sshd";
/** Privilege-separation directory sshd needs; /run is a tmpfs, so create it every time. */
const PRIVSEP_DIR = "/run/sshd";
/** All namespace hosts live in this /16; the blackhole guard route covers it. */
const NS_NET = "10.213.0.0/16";
/** Prefix of every network namespace created by {@linkcode startNamespaceHosts}. */
const NS_PREFIX = "distex-ns";
/** Environment variable sshd sets in every loopback session (see `SetEnv`). */
const MARKER_VAR = "DISTEX_SSH_HOST";

/** Owner files of namespaces (the lock on a name); /run is cleared on boot, like netns. */
const NS_REGISTRY = "/run/distex-ns";
/** Owner file in every temp dir, read by {@linkcode cleanupStaleHosts}. */
const OWNER_FILE = "owner.json";

/** Only tells a hang from a loaded machine (login takes ~0.3 s when idle). */
const DEFAULT_START_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------
// Public types

/** Result of a command run to completion. */
export interface ExecResult {
  /** Exit code; 255 means ssh itself (connection, auth, forwarding) failed. */
  code: number;
  /** Everything the command wrote to stdout, decoded as UTF-8. */
  stdout: string;
  /** Everything the command wrote to stderr, decoded as UTF-8. */
  stderr: string;
}

/** Options for {@linkcode SshHost.exec} and {@linkcode NamespaceHost.exec}. */
export interface ExecOptions {
  /** Bytes written to the remote command's stdin, then closed. @default {undefined} (stdin is /dev/null) */
  stdin?: string | Uint8Array;
  /** Aborting kills the local `ssh` process (the remote command may outlive it). */
  signal?: AbortSignal;
  /** Extra `ssh` arguments placed before the alias, e.g. `["-R", "r.sock:l.sock"]`. @default {[]} */
  sshArgs?: readonly string[];
}

/** Options shared by {@linkcode startSshHost} and {@linkcode startNamespaceHosts}. */
export interface HostOptions {
  /** How long to wait for `ssh <alias> true` to succeed. @default {30000} */
  startTimeoutMs?: number;
  /**
   * Extra sshd_config lines. They go before the defaults, and for sshd the
   * first value of a keyword wins, so they override (except cumulative ones
   * such as `ListenAddress`). No `Match` blocks.
   * @default {[]}
   */
  sshdConfig?: readonly string[];
  /**
   * Extra lines for the `Host *` block of ssh_config, placed before the
   * defaults so they win, e.g. `"KexAlgorithms curve25519-sha256"` (about
   * 0.12 s faster per connection).
   * @default {[]}
   */
  sshConfig?: readonly string[];
  /**
   * Environment variables sshd sets in every session (one `SetEnv` line;
   * sshd honours only the first `SetEnv`, so do not put one in
   * `sshdConfig`). Names and values must not contain whitespace or quotes.
   * @default {{}}
   */
  env?: Readonly<Record<string, string>>;
  /**
   * Let the remote bash source root's `~/.bashrc`, as a real host would.
   * Debian's bash does so for every ssh command; on this machine that file
   * runs `pyenv init` and costs about 0.8 s per connection (1.1 s instead
   * of 0.25 s). By default the hosts set `SHLVL=1` in the session, which makes
   * bash skip it.
   * @default {false}
   */
  sourceBashrc?: boolean;
}

/** Options for {@linkcode startSshHost}. */
export interface SshHostOptions extends HostOptions {
  /** Host alias written to ssh_config. @default {"distex-lo-<random>"} */
  alias?: string;
}

/** A private sshd on 127.0.0.1, started by {@linkcode startSshHost}. */
export interface SshHost extends AsyncDisposable {
  /** The `Host` alias in {@linkcode SshHost.configPath}; resolves address, port and user. */
  readonly alias: string;
  /** Extra ssh arguments a pool needs to reach the host: `["-F", configPath]`. */
  readonly sshArgs: readonly string[];
  /** Path of the ssh_config file (client side). */
  readonly configPath: string;
  /** Private 0700 temp dir under /var/tmp holding keys, configs and the log. */
  readonly dir: string;
  /** PID of the sshd listener (a direct child of this process). */
  readonly pid: number;
  /** TCP port sshd listens on, on 127.0.0.1. */
  readonly port: number;
  /** Path of the sshd log (sshd `-e` output). */
  readonly logPath: string;
  /**
   * Host spec for a pool.
   * @param n Number of workers on this host.
   * @returns `ssh://<alias>/<n>`.
   */
  hostSpec(n: number): string;
  /**
   * Runs a shell command on the host (`ssh -F cfg -T alias cmd`).
   * @param cmd Command line for the remote login shell.
   * @param options Stdin, abort signal and extra ssh arguments.
   * @returns Exit code and decoded output; never throws for a non-zero exit.
   */
  exec(cmd: string, options?: ExecOptions): Promise<ExecResult>;
  /**
   * Fault injection: SIGKILLs the sshd listener and awaits its exit. New
   * connections are refused; open sessions keep running (as on a real host).
   * {@linkcode SshHost.close} still cleans them up.
   */
  kill(): Promise<void>;
  /**
   * Reads the sshd log (for failure messages).
   * @returns The log so far, or "" once the dir is removed.
   */
  log(): Promise<string>;
  /**
   * Stops sshd by PID and every process the host started (descendants of
   * sshd, sessions orphaned by {@linkcode SshHost.kill}, and anything that
   * carries the host's `DISTEX_SSH_HOST` marker in its environment), awaits
   * sshd's exit status and removes {@linkcode SshHost.dir}. Idempotent.
   */
  close(): Promise<void>;
}

/** One network-namespace "machine" of {@linkcode NamespaceHosts}. */
export interface NamespaceHost {
  /** The `Host` alias in the shared ssh_config. Same as {@linkcode NamespaceHost.nsName}. */
  readonly alias: string;
  /** Network namespace name, `distex-ns<i>-<tag>`. */
  readonly nsName: string;
  /** The host's address, `10.213.<k>.2` (sshd listens there on port 22). */
  readonly address: string;
  /** Address of the test machine's end of the link, `10.213.<k>.1`. */
  readonly peerAddress: string;
  /** Veth name on the test machine's side. */
  readonly hostVeth: string;
  /** Veth name inside the namespace. */
  readonly nsVeth: string;
  /** Path of this host's sshd log. */
  readonly logPath: string;
  /**
   * Host spec for a pool.
   * @param n Number of workers on this host.
   * @returns `ssh://<alias>/<n>`.
   */
  hostSpec(n: number): string;
  /**
   * Lists every process of this host: sshd, sessions and whatever they started.
   * @returns PIDs from `ip netns pids`; empty once the host is down or deleted.
   */
  pids(): Promise<number[]>;
  /**
   * Fault injection: takes the link down. The guard route is (re)checked
   * first. `"ns"` (the default) downs the namespace end: new connects fail
   * with `No route to host` after ~3 s. `"host"` downs the test machine's end:
   * new connects fail at once (blackhole, `Invalid argument`).
   * @param side Which end of the veth pair to take down.
   */
  cutLink(side?: "ns" | "host"): Promise<void>;
  /** Brings both ends of the link back up. */
  restoreLink(): Promise<void>;
  /**
   * Fault injection: SIGKILLs every process in the namespace (sshd, sessions,
   * workers): the machine "crashes". Its private /tmp goes with it.
   */
  killSshd(): Promise<void>;
  /**
   * Kills whatever runs in the namespace, then starts a fresh sshd with a
   * fresh, empty /tmp and waits until it accepts logins: a "reboot".
   * @throws {Error} When sshd does not come up in time (message has its log).
   */
  reboot(): Promise<void>;
  /**
   * Runs a shell command on the host (`ssh -F cfg -T alias cmd`).
   * @param cmd Command line for the remote login shell.
   * @param options Stdin, abort signal and extra ssh arguments.
   * @returns Exit code and decoded output; never throws for a non-zero exit.
   */
  exec(cmd: string, options?: ExecOptions): Promise<ExecResult>;
  /**
   * Reads this host's sshd log (for failure messages).
   * @returns The log so far, or "" once the dir is removed.
   */
  log(): Promise<string>;
}

/** Namespace hosts sharing one key pair and one ssh_config; from {@linkcode startNamespaceHosts}. */
export interface NamespaceHosts extends AsyncDisposable {
  /** The hosts, in creation order. */
  readonly hosts: readonly NamespaceHost[];
  /** Extra ssh arguments a pool needs to reach the hosts: `["-F", configPath]`. */
  readonly sshArgs: readonly string[];
  /** Path of the shared ssh_config file. */
  readonly configPath: string;
  /** Private 0700 temp dir under /var/tmp holding keys, configs and logs. */
  readonly dir: string;
  /**
   * Kills every process in every namespace, deletes the namespaces (and so
   * the veth pairs), deletes the guard route unless another `distex-ns*`
   * namespace still exists, and removes {@linkcode NamespaceHosts.dir}.
   * Idempotent and tolerant of things already gone.
   */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Public functions

/**
 * Prints `SKIPPED: <test>: <reason>` to stderr, so a skipped test is visible
 * in the output. Pair it with `Deno.test({ ignore: true })` so the test is
 * counted as ignored, never as passed.
 *
 * @param test Name of the test (or group of tests) skipped.
 * @param reason Why, e.g. the result of {@linkcode sshPrerequisites}.
 *
 * @example Skip a group
 * ```ts ignore
 * const reason = await namespacePrerequisites();
 * if (reason !== null) skipMessage("namespace host tests", reason);
 * ```
 */
export function skipMessage(test: string, reason: string): void {
  console.error(`\n${"!".repeat(8)} SKIPPED: ${test}: ${reason}\n`);
}

/**
 * Checks what {@linkcode startSshHost} needs: `/usr/sbin/sshd`, and `ssh` and
 * `ssh-keygen` on PATH.
 *
 * @returns `null` when everything is there, else a human-readable reason.
 *
 * @example Skip when sshd is missing
 * ```ts ignore
 * const reason = await sshPrerequisites();
 * Deno.test({ name: "ssh", ignore: reason !== null, fn() {} });
 * ```
 */
export async function sshPrerequisites(): Promise<string | null> {
  if (Deno.build.os !== "linux") {
    return `SSH test hosts need Linux, not ${Deno.build.os}`;
  }
  const missing: string[] = [];
  if (!(await isExecutable(SSHD))) missing.push(SSHD);
  for (const name of ["ssh", "ssh-keygen"]) {
    if ((await which(name)) === null) missing.push(`${name} (on PATH)`);
  }
  if (missing.length > 0) {
    return `missing ${
      missing.join(", ")
    }: install openssh-server and openssh-client`;
  }
  return null;
}

let namespaceCheck: Promise<string | null> | undefined;

/**
 * Checks what {@linkcode startNamespaceHosts} needs: everything of
 * {@linkcode sshPrerequisites}, root, `ip` (iproute2), and a kernel and
 * privileges that allow creating a network namespace with a veth pair (probed
 * once per process by creating and deleting a throwaway namespace).
 *
 * @returns `null` when namespace hosts can run, else a human-readable reason.
 *
 * @example Skip when not root
 * ```ts ignore
 * const reason = await namespacePrerequisites();
 * Deno.test({ name: "netns", ignore: reason !== null, fn() {} });
 * ```
 */
export function namespacePrerequisites(): Promise<string | null> {
  namespaceCheck ??= checkNamespaces();
  return namespaceCheck;
}

/**
 * Absolute path of the running Deno binary, usable on every test host (they
 * are this machine, logged in as root). Namespace hosts have a private /tmp,
 * so this only works there if Deno is not installed under /tmp.
 *
 * @returns `Deno.execPath()`.
 */
export function denoPath(): string {
  return Deno.execPath();
}

/**
 * Starts a private sshd on 127.0.0.1 at a free port with its own host key,
 * client key and configs in a fresh 0700 dir under /var/tmp, and waits until
 * `ssh -F <config> <alias> true` succeeds.
 *
 * @param options Timeout and extra config lines.
 * @returns The running host; dispose of it (`await using`) or call `close()`.
 * @throws {Error} When sshd fails to start or accept a login in time (the
 * message includes the sshd log); everything started is cleaned up first.
 *
 * @example Run a command
 * ```ts ignore
 * await using host = await startSshHost();
 * const { stdout } = await host.exec("echo ok"); // "ok\n"
 * ```
 */
export async function startSshHost(
  options: SshHostOptions = {},
): Promise<SshHost> {
  await cleanupStaleOnce();
  const dir = await makePrivateDir("distex-ssh-");
  let host: LoopbackHost | undefined;
  try {
    await Deno.mkdir(PRIVSEP_DIR, { recursive: true, mode: 0o755 }).catch(
      () => {},
    );
    await makeKeys(dir);
    const alias = options.alias ?? `distex-lo-${randomHex(3)}`;
    const marker = `${alias}-${randomHex(4)}`;
    const owner = await selfOwner();
    const configPath = `${dir}/ssh_config`;
    const sshdConfigPath = `${dir}/sshd_config`;
    const logPath = `${dir}/sshd.log`;
    const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    let lastLog = "";
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = freePort();
      await Deno.writeTextFile(
        sshdConfigPath,
        sshdConfig(dir, {
          port,
          listen: "127.0.0.1",
          pidFile: `${dir}/sshd.pid`,
          options,
          env: { [MARKER_VAR]: marker },
        }),
      );
      await Deno.writeTextFile(
        configPath,
        sshConfig(dir, options.sshConfig ?? [], [{
          alias,
          hostName: "127.0.0.1",
          port,
        }]),
      );
      await Deno.writeTextFile(logPath, "");
      const child = new Deno.Command("sh", {
        args: [
          "-c",
          `exec ${quote(SSHD)} -D -e -f ${quote(sshdConfigPath)} 2>>${
            quote(logPath)
          }`,
        ],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const proc = watch(child);
      const sshd = await readProc(child.pid);
      await writeOwner(`${dir}/${OWNER_FILE}`, {
        ...owner,
        marker,
        ...(sshd ? { sshd: { pid: child.pid, start: sshd.start } } : {}),
      });
      const started = new LoopbackHost({
        alias,
        dir,
        configPath,
        logPath,
        port,
        marker,
        proc,
      });
      host = started;
      const ready = await waitForSshd({
        proc,
        logPath,
        deadline: Date.now() + timeoutMs,
        probe: () =>
          started.exec("true", { sshArgs: ["-o", "ConnectTimeout=2"] }),
      });
      if (ready === "ready") return started;
      lastLog = await started.log();
      // Port taken between freePort() and sshd's bind: sshd has exited, retry.
      if (ready === "port-in-use") continue;
      throw new Error(
        `Cannot start sshd on 127.0.0.1:${port}: ${ready}; sshd log:\n${lastLog}`,
      );
    }
    throw new Error(
      `Cannot start sshd: no free port after 5 attempts; sshd log:\n${lastLog}`,
    );
  } catch (error) {
    await host?.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

/**
 * Starts `count` network-namespace "machines": each is a netns
 * `distex-ns<i>-<tag>` joined to this machine by a veth pair on its own /24
 * (`10.213.<k>.1` here, `10.213.<k>.2` there, k picked at random and
 * reserved atomically by the veth name, so concurrent test processes do not
 * collide), running sshd on port 22 with a private tmpfs /tmp. The blackhole
 * guard route `10.213.0.0/16` is added first. All hosts share one key pair
 * and one ssh_config with a `Host` alias per host.
 *
 * @param count Number of hosts, 1 to 32.
 * @param options Timeout and extra config lines.
 * @returns The running hosts; dispose of them (`await using`) or call `close()`.
 * @throws {RangeError} When `count` is not an integer from 1 to 32.
 * @throws {Error} When {@linkcode namespacePrerequisites} fails or a host does
 * not come up in time; everything started is cleaned up first.
 *
 * @example Two hosts
 * ```ts ignore
 * await using net = await startNamespaceHosts(2);
 * const [a, b] = net.hosts;
 * await a!.exec("touch /tmp/x"); // /tmp/x does not exist on b
 * ```
 */
export async function startNamespaceHosts(
  count: number,
  options: HostOptions = {},
): Promise<NamespaceHosts> {
  if (!Number.isInteger(count) || count < 1 || count > 32) {
    throw new RangeError(
      `Cannot start namespace hosts: count must be an integer from 1 to 32, got ${count}`,
    );
  }
  const reason = await namespacePrerequisites();
  if (reason !== null) {
    throw new Error(`Cannot start namespace hosts: ${reason}`);
  }
  await cleanupStaleOnce();
  const dir = await makePrivateDir("distex-ns-");
  const net = new NamespaceNet(dir, options);
  try {
    await writeOwner(`${dir}/${OWNER_FILE}`, await selfOwner());
    await Deno.mkdir(PRIVSEP_DIR, { recursive: true, mode: 0o755 }).catch(
      () => {},
    );
    await ensureGuardRoute();
    await makeKeys(dir);
    for (let i = 0; i < count; i++) await net.addHost(i);
    await Deno.writeTextFile(
      net.configPath,
      sshConfig(dir, options.sshConfig ?? [], net.entries()),
    );
    await Promise.all(net.hosts.map((host) => host.startSshd()));
    return net;
  } catch (error) {
    await net.close();
    throw error;
  }
}

/**
 * Removes what earlier test processes left behind when they died without
 * `close()` (killed, timed out): their `distex-ns*` namespaces with every
 * process inside, their loopback sshd and the processes it started, their
 * temp dirs, and the guard route when no `distex-ns*` namespace is left.
 * Only things whose recorded owner process is gone are touched, so running
 * test processes are safe. {@linkcode startSshHost} and
 * {@linkcode startNamespaceHosts} call it once per process.
 *
 * @returns One line per thing removed.
 *
 * @example In a CI script, before the tests
 * ```ts ignore
 * for (const line of await cleanupStaleHosts()) console.log(line);
 * ```
 */
export async function cleanupStaleHosts(): Promise<string[]> {
  const removed: string[] = [];
  if (Deno.uid() === 0 && (await which("ip")) !== null) {
    const names = await netnsNames();
    for (const name of names.filter((n) => n.startsWith(NS_PREFIX))) {
      const owner = await readOwner(`${NS_REGISTRY}/${name}`);
      // No owner file: not created by this module's registry; leave it alone.
      if (owner === null || (await ownerAlive(owner))) continue;
      await killNamespace(name);
      await run("ip", ["netns", "del", name]);
      await Deno.remove(`${NS_REGISTRY}/${name}`).catch(() => {});
      removed.push(`network namespace ${name}`);
    }
    for await (const entry of readDirOrEmpty(NS_REGISTRY)) {
      const path = `${NS_REGISTRY}/${entry.name}`;
      const owner = await readOwner(path);
      if (names.includes(entry.name) || (owner && await ownerAlive(owner))) {
        continue;
      }
      await Deno.remove(path).catch(() => {});
    }
    if (removed.length > 0 && !(await anyTestNamespace())) {
      await run("ip", ["route", "del", "blackhole", NS_NET]);
      removed.push(`guard route blackhole ${NS_NET}`);
    }
  }
  for await (const entry of readDirOrEmpty("/var/tmp")) {
    if (!/^distex-(ssh|ns)-/.test(entry.name) || !entry.isDirectory) continue;
    const dir = `/var/tmp/${entry.name}`;
    const owner = await readOwner(`${dir}/${OWNER_FILE}`);
    if (owner === null || (await ownerAlive(owner))) continue;
    if (owner.marker !== undefined) {
      const roots = new Map<number, string>();
      if (owner.sshd) roots.set(owner.sshd.pid, owner.sshd.start);
      await killTree(roots, `${MARKER_VAR}=${owner.marker}`);
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    removed.push(`temp dir ${dir}`);
  }
  return removed;
}

let staleCleanup: Promise<unknown> | undefined;

function cleanupStaleOnce(): Promise<unknown> {
  staleCleanup ??= cleanupStaleHosts().catch(() => []);
  return staleCleanup;
}

/** Who created a namespace or temp dir; see {@linkcode cleanupStaleHosts}. */
interface Owner {
  pid: number;
  /** starttime of `pid`, so a reused PID does not count as the owner. */
  start: string;
  /** Loopback hosts: the session marker value. */
  marker?: string;
  /** Loopback hosts: the sshd listener. */
  sshd?: { pid: number; start: string };
  /** Namespaces: temp dir of their NamespaceHosts. */
  dir?: string;
}

async function selfOwner(): Promise<Owner> {
  return { pid: Deno.pid, start: (await readProc(Deno.pid))?.start ?? "" };
}

async function ownerAlive(owner: Owner): Promise<boolean> {
  const info = await readProc(owner.pid);
  return info !== null && info.start === owner.start && info.state !== "Z";
}

/**
 * Writes an owner file. In the namespace registry it must not exist yet.
 * @returns false when the registry file already exists (name taken).
 */
async function writeOwner(path: string, owner: Owner): Promise<boolean> {
  const createNew = path.startsWith(`${NS_REGISTRY}/`);
  if (createNew) {
    await Deno.mkdir(NS_REGISTRY, { recursive: true, mode: 0o700 });
  }
  try {
    await Deno.writeTextFile(path, JSON.stringify(owner), { createNew });
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    throw error;
  }
}

async function readOwner(path: string): Promise<Owner | null> {
  try {
    const owner = JSON.parse(await Deno.readTextFile(path));
    return typeof owner?.pid === "number" && typeof owner?.start === "string"
      ? owner as Owner
      : null;
  } catch {
    return null;
  }
}

async function* readDirOrEmpty(path: string): AsyncGenerator<Deno.DirEntry> {
  try {
    yield* Deno.readDir(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

// ---------------------------------------------------------------------------
// Loopback host

interface WatchedProcess {
  child: Deno.ChildProcess;
  /** Set once the process has exited. */
  exited: Deno.CommandStatus | null;
  status: Promise<Deno.CommandStatus>;
}

/** Reads `proc.exited` without letting TypeScript narrow it across awaits. */
function exitStatus(proc: WatchedProcess): Deno.CommandStatus | null {
  return proc.exited;
}

function watch(child: Deno.ChildProcess): WatchedProcess {
  const proc: WatchedProcess = { child, exited: null, status: child.status };
  proc.status = child.status.then((status) => (proc.exited = status));
  return proc;
}

interface LoopbackInit {
  alias: string;
  dir: string;
  configPath: string;
  logPath: string;
  port: number;
  marker: string;
  proc: WatchedProcess;
}

class LoopbackHost implements SshHost {
  readonly alias: string;
  readonly sshArgs: readonly string[];
  readonly configPath: string;
  readonly dir: string;
  readonly pid: number;
  readonly port: number;
  readonly logPath: string;
  #marker: string;
  #proc: WatchedProcess;
  /** Processes below sshd when it was killed by kill(): pid -> starttime. */
  #orphans = new Map<number, string>();
  #closing: Promise<void> | undefined;

  constructor(init: LoopbackInit) {
    this.alias = init.alias;
    this.configPath = init.configPath;
    this.sshArgs = ["-F", init.configPath];
    this.dir = init.dir;
    this.pid = init.proc.child.pid;
    this.port = init.port;
    this.logPath = init.logPath;
    this.#marker = init.marker;
    this.#proc = init.proc;
  }

  hostSpec(n: number): string {
    return `ssh://${this.alias}/${n}`;
  }

  exec(cmd: string, options: ExecOptions = {}): Promise<ExecResult> {
    return sshExec(this.sshArgs, this.alias, cmd, options);
  }

  async kill(): Promise<void> {
    if (this.#proc.exited !== null) return;
    const table = await readProcessTable();
    for (const pid of descendants(table, [this.pid])) {
      const info = table.get(pid);
      if (pid !== this.pid && info !== undefined) {
        this.#orphans.set(pid, info.start);
      }
    }
    signal(this.pid, "SIGKILL");
    await this.#proc.status;
  }

  async log(): Promise<string> {
    return await Deno.readTextFile(this.logPath).catch(() => "");
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const roots = new Map(this.#orphans);
    if (this.#proc.exited === null) roots.set(this.pid, "");
    await killTree(roots, `${MARKER_VAR}=${this.#marker}`);
    await this.#proc.status;
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

// ---------------------------------------------------------------------------
// Namespace hosts

class NamespaceNet implements NamespaceHosts {
  readonly hosts: NsHost[] = [];
  readonly sshArgs: readonly string[];
  readonly configPath: string;
  readonly dir: string;
  readonly options: HostOptions;
  #closing: Promise<void> | undefined;

  constructor(dir: string, options: HostOptions) {
    this.dir = dir;
    this.configPath = `${dir}/ssh_config`;
    this.sshArgs = ["-F", this.configPath];
    this.options = options;
  }

  entries(): HostEntry[] {
    return this.hosts.map((h) => ({
      alias: h.alias,
      hostName: h.address,
      port: 22,
    }));
  }

  /** Creates netns, veth pair and addresses for host `i` (no sshd yet). */
  async addHost(i: number): Promise<void> {
    let nsName = "";
    const owner = await selfOwner();
    for (let attempt = 0;; attempt++) {
      nsName = `${NS_PREFIX}${i}-${randomHex(2)}`;
      // The registry file is the lock on the name, and tells
      // cleanupStaleHosts() whose namespace this is.
      const registry = `${NS_REGISTRY}/${nsName}`;
      const claimed = await writeOwner(registry, { ...owner, dir: this.dir });
      const r = claimed
        ? await run("ip", ["netns", "add", nsName])
        : { code: 1, stdout: "", stderr: "File exists" };
      if (r.code === 0) break;
      if (claimed) await Deno.remove(registry).catch(() => {});
      if (!/exist/i.test(r.stderr) || attempt >= 20) {
        throw new Error(
          `Cannot create network namespace ${nsName}: ${r.stderr.trim()}`,
        );
      }
    }
    const host = new NsHost(this, nsName);
    this.hosts.push(host);
    // Another process may have deleted the guard route between our first check
    // and the netns creation; now that our netns exists, it will not do so again.
    await ensureGuardRoute();
    await host.allocateLink();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await Promise.all(this.hosts.map((host) => host.destroy()));
    if (!(await anyTestNamespace())) {
      await run("ip", ["route", "del", "blackhole", NS_NET]);
    }
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

class NsHost implements NamespaceHost {
  readonly alias: string;
  readonly nsName: string;
  address = "";
  peerAddress = "";
  hostVeth = "";
  nsVeth = "";
  readonly logPath: string;
  #net: NamespaceNet;
  #proc: WatchedProcess | undefined;

  constructor(net: NamespaceNet, nsName: string) {
    this.#net = net;
    this.nsName = nsName;
    this.alias = nsName;
    this.logPath = `${net.dir}/sshd_${nsName}.log`;
  }

  /** Picks a free 10.213.k.0/24, reserving it by creating the veth named after k. */
  async allocateLink(): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const used = await usedSubnets();
      const free = [];
      for (let k = 1; k <= 250; k++) if (!used.has(k)) free.push(k);
      if (free.length === 0) break;
      const k = free[Math.floor(Math.random() * free.length)]!;
      const hostVeth = `dx213-${k}-h`;
      const nsVeth = `dx213-${k}-n`;
      const r = await run("ip", [
        "link",
        "add",
        hostVeth,
        "type",
        "veth",
        "peer",
        "name",
        nsVeth,
        "netns",
        this.nsName,
      ]);
      if (r.code !== 0) {
        if (/exist/i.test(r.stderr)) continue; // k taken concurrently: pick again
        throw new Error(
          `Cannot create veth pair ${hostVeth}/${nsVeth}: ${r.stderr.trim()}`,
        );
      }
      this.hostVeth = hostVeth;
      this.nsVeth = nsVeth;
      this.peerAddress = `10.213.${k}.1`;
      this.address = `10.213.${k}.2`;
      await ip(["addr", "add", `${this.peerAddress}/24`, "dev", hostVeth]);
      await ip(["link", "set", hostVeth, "up"]);
      await ip([
        "-n",
        this.nsName,
        "addr",
        "add",
        `${this.address}/24`,
        "dev",
        nsVeth,
      ]);
      await ip(["-n", this.nsName, "link", "set", nsVeth, "up"]);
      await ip(["-n", this.nsName, "link", "set", "lo", "up"]);
      return;
    }
    throw new Error(
      `Cannot allocate a free /24 in ${NS_NET} for ${this.nsName}`,
    );
  }

  /** Starts sshd in the namespace with a fresh private /tmp and waits until it accepts logins. */
  async startSshd(): Promise<void> {
    const dir = this.#net.dir;
    const cfg = `${dir}/sshd_${this.nsName}_config`;
    await Deno.writeTextFile(
      cfg,
      sshdConfig(dir, {
        port: 22,
        listen: this.address,
        pidFile: `${dir}/sshd_${this.nsName}.pid`,
        options: this.#net.options,
        env: {},
      }),
    );
    await Deno.writeTextFile(this.logPath, "");
    const script =
      `exec 2>>${
        quote(this.logPath)
      }; mount -t tmpfs -o mode=1777 tmpfs /tmp && ` +
      `exec ${quote(SSHD)} -D -e -f ${quote(cfg)}`;
    // `ip netns exec` and `sh` both exec, so the child's PID is sshd's.
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", this.nsName, "sh", "-c", script],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const proc = watch(child);
    this.#proc = proc;
    const timeoutMs = this.#net.options.startTimeoutMs ??
      DEFAULT_START_TIMEOUT_MS;
    const ready = await waitForSshd({
      proc,
      logPath: this.logPath,
      deadline: Date.now() + timeoutMs,
      probe: () => this.exec("true", { sshArgs: ["-o", "ConnectTimeout=2"] }),
    });
    if (ready !== "ready") {
      throw new Error(
        `Cannot start sshd in ${this.nsName} on ${this.address}:22: ${ready}; sshd log:\n${await this
          .log()}`,
      );
    }
  }

  hostSpec(n: number): string {
    return `ssh://${this.alias}/${n}`;
  }

  async pids(): Promise<number[]> {
    const r = await run("ip", ["netns", "pids", this.nsName]);
    if (r.code !== 0) return [];
    return r.stdout.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number);
  }

  async cutLink(side: "ns" | "host" = "ns"): Promise<void> {
    await ensureGuardRoute();
    if (side === "host") await ip(["link", "set", this.hostVeth, "down"]);
    else await ip(["-n", this.nsName, "link", "set", this.nsVeth, "down"]);
  }

  async restoreLink(): Promise<void> {
    await ip(["link", "set", this.hostVeth, "up"]);
    await ip(["-n", this.nsName, "link", "set", this.nsVeth, "up"]);
  }

  async killSshd(): Promise<void> {
    await killNamespace(this.nsName);
    if (this.#proc !== undefined) await this.#proc.status;
  }

  async reboot(): Promise<void> {
    await this.killSshd();
    await this.startSshd();
  }

  exec(cmd: string, options: ExecOptions = {}): Promise<ExecResult> {
    return sshExec(this.#net.sshArgs, this.alias, cmd, options);
  }

  async log(): Promise<string> {
    return await Deno.readTextFile(this.logPath).catch(() => "");
  }

  /** Kills everything in the namespace and deletes it with its veth pair. */
  async destroy(): Promise<void> {
    await this.killSshd();
    // Delete the pair explicitly while its name is still ours: `ip netns del`
    // destroys it asynchronously, and another process may reuse the name.
    if (this.hostVeth !== "") await run("ip", ["link", "del", this.hostVeth]);
    await run("ip", ["netns", "del", this.nsName]);
    await Deno.remove(`${NS_REGISTRY}/${this.nsName}`).catch(() => {});
  }
}

// ---------------------------------------------------------------------------
// Configs and keys

interface SshdConfigInit {
  port: number;
  listen: string;
  pidFile: string;
  options: HostOptions;
  /** Session environment set by this module, on top of `options.env`. */
  env: Readonly<Record<string, string>>;
}

function sshdConfig(dir: string, init: SshdConfigInit): string {
  const env = {
    // bash skips ~/.bashrc for ssh commands when SHLVL says it is nested.
    ...(init.options.sourceBashrc ? {} : { SHLVL: "1" }),
    ...init.options.env,
    ...init.env,
  };
  const pairs = Object.entries(env).map(([name, value]) => `${name}=${value}`);
  for (const pair of pairs) {
    if (/[\s"'\\]/.test(pair) || !/^[A-Za-z_][A-Za-z0-9_]*=/.test(pair)) {
      throw new TypeError(
        `Cannot set session variable '${pair}': use a plain name and a value without whitespace or quotes`,
      );
    }
  }
  return [
    ...(init.options.sshdConfig ?? []),
    ...(pairs.length > 0 ? [`SetEnv ${pairs.join(" ")}`] : []),
    `Port ${init.port}`,
    `ListenAddress ${init.listen}`,
    `HostKey ${dir}/host_key`,
    `PidFile ${init.pidFile}`,
    `AuthorizedKeysFile ${dir}/authorized_keys`,
    "PermitRootLogin prohibit-password",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    "StrictModes no",
    "AllowStreamLocalForwarding yes",
    "StreamLocalBindUnlink yes",
    "MaxStartups 200",
    "ClientAliveInterval 1",
    "ClientAliveCountMax 3",
    "PrintMotd no",
    "LogLevel INFO",
    "",
  ].join("\n");
}

interface HostEntry {
  alias: string;
  hostName: string;
  port: number;
}

function sshConfig(
  dir: string,
  extra: readonly string[],
  hosts: readonly HostEntry[],
): string {
  const lines = [
    "Host *",
    ...extra.map((line) => `  ${line}`),
    `  User ${userName()}`,
    `  IdentityFile ${dir}/client_key`,
    "  IdentitiesOnly yes",
    "  BatchMode yes",
    "  StrictHostKeyChecking no",
    "  UserKnownHostsFile /dev/null",
    "  GlobalKnownHostsFile /dev/null",
    "  LogLevel ERROR",
    "  ConnectTimeout 5",
    "  ServerAliveInterval 2",
    "  ServerAliveCountMax 3",
    "  ExitOnForwardFailure yes",
  ];
  for (const h of hosts) {
    lines.push(
      `Host ${h.alias}`,
      `  HostName ${h.hostName}`,
      `  Port ${h.port}`,
    );
  }
  lines.push("");
  return lines.join("\n");
}

async function makeKeys(dir: string): Promise<void> {
  const keygen = (name: string, comment: string) =>
    run("ssh-keygen", [
      "-q",
      "-t",
      "ed25519",
      "-N",
      "",
      "-C",
      comment,
      "-f",
      `${dir}/${name}`,
    ]);
  const results = await Promise.all([
    keygen("host_key", "distex-test-host"),
    keygen("client_key", "distex-test-client"),
  ]);
  for (const r of results) {
    if (r.code !== 0) {
      throw new Error(
        `Cannot create test ssh keys in ${dir}: ${r.stderr.trim()}`,
      );
    }
  }
  await Deno.copyFile(`${dir}/client_key.pub`, `${dir}/authorized_keys`);
}

async function makePrivateDir(prefix: string): Promise<string> {
  // Not /tmp: namespace hosts mount a private tmpfs there (notes §3).
  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix });
  await Deno.chmod(dir, 0o700);
  return dir;
}

function userName(): string {
  if (Deno.uid() === 0) return "root";
  return Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ?? "root";
}

// ---------------------------------------------------------------------------
// Starting and waiting

interface WaitInit {
  proc: WatchedProcess;
  logPath: string;
  deadline: number;
  probe: () => Promise<ExecResult>;
}

/**
 * Waits for "Server listening" in the log (cheap, no traffic), then for a
 * successful `ssh true`.
 * @returns `"ready"`, `"port-in-use"`, or a reason.
 */
async function waitForSshd(init: WaitInit): Promise<string> {
  const { proc, logPath, deadline } = init;
  for (;;) {
    const exited = exitStatus(proc); // before reading the log, which then is complete
    const log = await Deno.readTextFile(logPath).catch(() => "");
    if (exited !== null) {
      if (/Address already in use/.test(log)) return "port-in-use";
      return `sshd exited with code ${exited.code}`;
    }
    if (/Server listening on/.test(log)) break;
    if (Date.now() > deadline) return "sshd did not listen in time";
    await delay(10);
  }
  let last: ExecResult | undefined;
  while (Date.now() < deadline) {
    const exited = exitStatus(proc);
    if (exited !== null) return `sshd exited with code ${exited.code}`;
    last = await init.probe();
    if (last.code === 0) return "ready";
    await delay(50);
  }
  return `no successful login in time (last ssh: code ${last?.code}, ${last?.stderr.trim()})`;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

// ---------------------------------------------------------------------------
// Processes

interface ProcInfo {
  ppid: number;
  state: string;
  /** Start time in clock ticks since boot; with the PID, identifies a process. */
  start: string;
}

async function readProc(pid: number): Promise<ProcInfo | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // Fields after "(comm)": state ppid ... starttime is field 22, index 19 here.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return {
    state: rest[0] ?? "?",
    ppid: Number(rest[1]),
    start: rest[19] ?? "",
  };
}

async function readProcessTable(): Promise<Map<number, ProcInfo>> {
  const table = new Map<number, ProcInfo>();
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    const info = await readProc(pid);
    if (info !== null) table.set(pid, info);
  }
  return table;
}

/** The roots (that exist in the table) and all their descendants. */
function descendants(
  table: Map<number, ProcInfo>,
  roots: Iterable<number>,
): Set<number> {
  const children = new Map<number, number[]>();
  for (const [pid, info] of table) {
    const list = children.get(info.ppid);
    if (list) list.push(pid);
    else children.set(info.ppid, [pid]);
  }
  const out = new Set<number>();
  const stack = [...roots].filter((pid) => table.has(pid));
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (out.has(pid)) continue;
    out.add(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

async function markedPids(
  table: Map<number, ProcInfo>,
  marker: string,
): Promise<number[]> {
  const out: number[] = [];
  for (const pid of table.keys()) {
    try {
      const env = decoder.decode(await Deno.readFile(`/proc/${pid}/environ`));
      if (env.split("\0").includes(marker)) out.push(pid);
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}

/** This process and its ancestors: never signalled. */
function protectedPids(table: Map<number, ProcInfo>): Set<number> {
  const out = new Set<number>([1]);
  for (let pid = Deno.pid; pid > 1 && !out.has(pid);) {
    out.add(pid);
    pid = table.get(pid)?.ppid ?? 0;
  }
  return out;
}

/**
 * Freezes (SIGSTOP) the roots, their descendants and every process whose
 * environment holds `marker`, rescanning until nothing new shows up (frozen
 * processes cannot fork or reparent their children away), then SIGKILLs them
 * all and waits until they are gone. Roots map pid -> starttime ("" = any), so
 * a reused PID is never hit.
 */
async function killTree(
  roots: Map<number, string>,
  marker: string,
): Promise<void> {
  const frozen = new Map<number, string>();
  for (let round = 0; round < 50; round++) {
    const table = await readProcessTable();
    const keep = protectedPids(table);
    const live = [...roots].filter(([pid, start]) =>
      start === "" || table.get(pid)?.start === start
    );
    const rootPids = [
      ...live.map(([pid]) => pid),
      ...(await markedPids(table, marker)),
    ];
    let fresh = 0;
    for (const pid of descendants(table, rootPids)) {
      const info = table.get(pid)!;
      if (keep.has(pid) || frozen.has(pid) || info.state === "Z") continue;
      signal(pid, "SIGSTOP");
      frozen.set(pid, info.start);
      fresh++;
    }
    if (fresh === 0) break;
  }
  for (const pid of frozen.keys()) signal(pid, "SIGKILL");
  for (let i = 0; i < 200; i++) {
    let alive = 0;
    for (const [pid, start] of frozen) {
      const info = await readProc(pid);
      if (info !== null && info.start === start && info.state !== "Z") alive++;
    }
    if (alive === 0) return;
    await delay(10);
  }
}

function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch {
    // already gone
  }
}

// ---------------------------------------------------------------------------
// Network

/** Names of all network namespaces (`ip netns list`). */
async function netnsNames(): Promise<string[]> {
  const r = await run("ip", ["netns", "list"]);
  if (r.code !== 0) {
    throw new Error(`Cannot list network namespaces: ${r.stderr.trim()}`);
  }
  return r.stdout.split("\n").map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name !== "");
}

/** True while any process's `distex-ns*` namespace exists (guard route in use). */
async function anyTestNamespace(): Promise<boolean> {
  try {
    return (await netnsNames()).some((name) => name.startsWith(NS_PREFIX));
  } catch {
    return true; // unknown: keep the route
  }
}

/** SIGKILLs every process in the namespace until none is left (bounded). */
async function killNamespace(nsName: string): Promise<void> {
  for (let round = 0; round < 100; round++) {
    const r = await run("ip", ["netns", "pids", nsName]);
    const pids = r.code === 0
      ? r.stdout.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number)
      : [];
    if (pids.length === 0) return;
    for (const pid of pids) signal(pid, "SIGKILL");
    await delay(round < 10 ? 5 : 20);
  }
}

async function ensureGuardRoute(): Promise<void> {
  const r = await run("ip", ["route", "add", "blackhole", NS_NET]);
  if (r.code !== 0 && !/exist/i.test(r.stderr)) {
    throw new Error(
      `Cannot add guard route 'blackhole ${NS_NET}': ${r.stderr.trim()}`,
    );
  }
}

/** Third octets k of 10.213.k.x already in use by addresses or routes. */
async function usedSubnets(): Promise<Set<number>> {
  const [addrs, routes] = await Promise.all([
    run("ip", ["-4", "-o", "addr", "show"]),
    run("ip", ["-4", "route", "show", "table", "all"]),
  ]);
  const used = new Set<number>([0]);
  for (
    const m of `${addrs.stdout}\n${routes.stdout}`.matchAll(
      /\b10\.213\.(\d+)\.\d+\/(\d+)/g,
    )
  ) {
    if (Number(m[2]) >= 24) used.add(Number(m[1]));
  }
  return used;
}

async function ip(args: string[]): Promise<void> {
  const r = await run("ip", args);
  if (r.code !== 0) {
    throw new Error(
      `Command 'ip ${args.join(" ")}' failed: ${r.stderr.trim()}`,
    );
  }
}

async function checkNamespaces(): Promise<string | null> {
  const ssh = await sshPrerequisites();
  if (ssh !== null) return ssh;
  if (Deno.uid() !== 0) return "network-namespace hosts need root";
  if ((await which("ip")) === null) return "missing ip (install iproute2)";
  const probe = `distex-p-${randomHex(3)}`;
  const add = await run("ip", ["netns", "add", probe]);
  if (add.code !== 0) {
    return `cannot create a network namespace: ${add.stderr.trim()}`;
  }
  try {
    const veth = await run("ip", [
      "-n",
      probe,
      "link",
      "add",
      "dxp0",
      "type",
      "veth",
      "peer",
      "name",
      "dxp1",
    ]);
    if (veth.code !== 0) {
      return `cannot create a veth pair: ${veth.stderr.trim()}`;
    }
    const exec = await run("ip", [
      "netns",
      "exec",
      probe,
      "sh",
      "-c",
      "mount -t tmpfs tmpfs /tmp",
    ]);
    if (exec.code !== 0) {
      return `cannot mount a private /tmp in a namespace: ${exec.stderr.trim()}`;
    }
    return null;
  } finally {
    await run("ip", ["netns", "del", probe]);
  }
}

// ---------------------------------------------------------------------------
// Small helpers

function sshExec(
  sshArgs: readonly string[],
  alias: string,
  cmd: string,
  options: ExecOptions,
): Promise<ExecResult> {
  return run(
    "ssh",
    [...sshArgs, "-T", ...(options.sshArgs ?? []), alias, cmd],
    options,
  );
}

async function run(
  cmd: string,
  args: readonly string[],
  options: Pick<ExecOptions, "stdin" | "signal"> = {},
): Promise<ExecResult> {
  const child = new Deno.Command(cmd, {
    args: [...args],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  }).spawn();
  if (options.stdin !== undefined) {
    const bytes = typeof options.stdin === "string"
      ? encoder.encode(options.stdin)
      : options.stdin;
    const writer = child.stdin.getWriter();
    await writer.write(bytes).catch(() => {}); // the command may not read it
    await writer.close().catch(() => {});
  }
  const out = await child.output();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

async function which(name: string): Promise<string | null> {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    if (dir !== "" && (await isExecutable(`${dir}/${name}`))) {
      return `${dir}/${name}`;
    }
  }
  return null;
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && ((info.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Single-quotes a string for sh. */
function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
