/**
 * Helpers for the tests of pools with SSH workers (`ssh_test.ts`,
 * `ssh_netns_test.ts`): the remote command of this checkout, a pool owner to
 * kill, and a view of the process table (`/proc`) to find what a pool left
 * behind. Bounded waits are in `_util.ts`.
 *
 * All test hosts run on this machine, so `/proc` shows their processes too.
 *
 * @module
 */
import { withTimeout } from "./_util.ts";

const decoder = new TextDecoder();

/** Absolute path of this checkout's `cli.ts`. */
export const CLI_PATH: string = new URL("../cli.ts", import.meta.url).pathname;

/**
 * The `ssh.command` that runs this checkout on a test host: the running Deno
 * binary and `cli.ts`, both by absolute path.
 *
 * @returns `<deno> run -A <checkout>/cli.ts`.
 */
export function remoteCommand(): string {
  return `${Deno.execPath()} run -A ${CLI_PATH}`;
}

/**
 * The `ssh.command` for namespace hosts, which see a private `/tmp`: when
 * this checkout (or the Deno binary) lives under `/tmp`, they are copied into
 * `dir` (a host's temp dir outside `/tmp`, removed with the hosts) first.
 *
 * @param dir Where to stage the copy.
 * @returns `<deno> run -A <visible checkout>/cli.ts`.
 */
export async function namespaceCommand(dir: string): Promise<string> {
  let deno = Deno.execPath();
  let cli = CLI_PATH;
  const checkout = new URL("..", import.meta.url).pathname;
  if (cli.startsWith("/tmp/")) {
    const code = `${dir}/code`;
    await Deno.mkdir(`${code}/src`, { recursive: true });
    for (const name of ["cli.ts", "worker.ts", "deno.json", "deno.lock"]) {
      await Deno.copyFile(`${checkout}${name}`, `${code}/${name}`).catch(
        () => {},
      );
    }
    for await (const entry of Deno.readDir(`${checkout}src`)) {
      if (entry.isFile) {
        await Deno.copyFile(
          `${checkout}src/${entry.name}`,
          `${code}/src/${entry.name}`,
        );
      }
    }
    cli = `${code}/cli.ts`;
  }
  if (deno.startsWith("/tmp/")) {
    await Deno.copyFile(deno, `${dir}/deno`);
    await Deno.chmod(`${dir}/deno`, 0o755);
    deno = `${dir}/deno`;
  }
  return `${deno} run -A ${cli}`;
}

/** One live (non-zombie) process as `/proc` shows it. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** The command line, arguments joined by spaces. */
  cmdline: string;
}

/** Every live process, or the ones whose pids are given. */
export async function processes(
  pids?: Iterable<number>,
): Promise<ProcessInfo[]> {
  const list: number[] = [];
  if (pids) list.push(...pids);
  else {
    for await (const entry of Deno.readDir("/proc")) {
      if (/^\d+$/.test(entry.name)) list.push(Number(entry.name));
    }
  }
  const out: ProcessInfo[] = [];
  for (const pid of list) {
    try {
      const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (rest[0] === "Z") continue;
      const cmdline = decoder.decode(
        await Deno.readFile(`/proc/${pid}/cmdline`),
      )
        .split("\0").join(" ").trim();
      out.push({ pid, ppid: Number(rest[1]), cmdline });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}

/** `root` (if alive) and all its live descendants. */
export async function processTree(root: number): Promise<ProcessInfo[]> {
  const all = await processes();
  const children = new Map<number, ProcessInfo[]>();
  for (const p of all) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const out: ProcessInfo[] = [];
  const stack = all.filter((p) => p.pid === root);
  while (stack.length > 0) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p.pid) ?? []));
  }
  return out;
}

/**
 * Marks the local `ssh` processes of one pool so that a test finds exactly
 * those. Put {@linkcode PoolTag.sshArgs} into the pool's `ssh.args` (the pool
 * passes them to every `ssh` it starts, relaunches included), then ask
 * {@linkcode PoolTag.ssh}.
 *
 * Never count "every ssh below this process": under `deno test --parallel`
 * all test files share one process, so other files' pools would be counted
 * (and killed) too.
 *
 * ```ts ignore
 * const tag = new PoolTag();
 * await using pool = await Pool.create({
 *   hosts: [host.hostSpec(2)],
 *   ssh: { args: [...host.sshArgs, ...tag.sshArgs], command: remoteCommand() },
 * });
 * assert.equal((await tag.ssh()).length, 1);
 * ```
 */
export class PoolTag {
  /** A fresh environment variable name that is never set anywhere. */
  readonly name: string = `DISTEX_TEST_POOL_${
    crypto.randomUUID().replaceAll("-", "").slice(0, 12)
  }`;
  /**
   * `-o SendEnv=<name>`: inert (ssh sends only variables that are set, and
   * this one never is; `SendEnv` adds up, so it overrides nothing), but
   * visible on the command line of every `ssh` the pool starts.
   */
  readonly sshArgs: readonly string[] = ["-o", `SendEnv=${this.name}`];

  /**
   * The live `ssh` processes carrying this tag, wherever they are in the
   * process table (also ones whose parent died).
   */
  async ssh(): Promise<ProcessInfo[]> {
    const mark = `SendEnv=${this.name}`;
    return (await processes()).filter((p) =>
      /^(\S*\/)?ssh /.test(p.cmdline) && p.cmdline.split(" ").includes(mark)
    );
  }

  /** The pids of {@linkcode PoolTag.ssh}. */
  async sshPids(): Promise<number[]> {
    return (await this.ssh()).map((p) => p.pid);
  }
}

/**
 * A tag for a test host's processes: start the host with `env: tag.env`, and
 * `tag.remote()` lists the live processes it started (they inherit it).
 */
export class HostTag {
  readonly #value = `t${crypto.randomUUID().slice(0, 8)}`;
  /** For the host's `env` option. */
  readonly env: { DISTEX_TEST_TAG: string } = { DISTEX_TEST_TAG: this.#value };

  /** The live processes that carry the tag. */
  remote(): Promise<number[]> {
    return processesWithEnv(`DISTEX_TEST_TAG=${this.#value}`);
  }
}

/** Live processes whose environment holds `entry` (`NAME=value`). */
export async function processesWithEnv(entry: string): Promise<number[]> {
  const out: number[] = [];
  for (const p of await processes()) {
    try {
      const env = decoder.decode(await Deno.readFile(`/proc/${p.pid}/environ`));
      if (env.split("\0").includes(entry)) out.push(p.pid);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Live processes whose command line or environment contains `text`. */
export async function processesMentioning(
  text: string,
): Promise<ProcessInfo[]> {
  const out: ProcessInfo[] = [];
  for (const p of await processes()) {
    let env = "";
    try {
      env = decoder.decode(await Deno.readFile(`/proc/${p.pid}/environ`));
    } catch {
      // gone meanwhile
    }
    if (p.cmdline.includes(text) || env.includes(text)) out.push(p);
  }
  return out;
}

/** Listens for `type` events on `target`; `seen` collects their details. */
export function recordEvents<T = unknown>(
  target: EventTarget,
  type: string,
): { seen: { at: number; detail: T }[]; stop: () => void } {
  const seen: { at: number; detail: T }[] = [];
  const listener = (event: Event) =>
    seen.push({
      at: performance.now(),
      detail: (event as CustomEvent<T>).detail,
    });
  target.addEventListener(type, listener);
  return { seen, stop: () => target.removeEventListener(type, listener) };
}

/**
 * Starts `deno run -A <fixture> <args>`, reads the first line of its stdout
 * as JSON, and hands back the child (stdout drained in the background). The
 * child's TMPDIR is `tmp`, a directory of its own: what a pool owner that the
 * test kills with SIGKILL leaves there (its socket directory) is removed with
 * it once the child has exited and `drained` resolves.
 */
export async function spawnFixture<T>(
  fixture: URL,
  args: string[],
  timeoutMs: number,
): Promise<
  { child: Deno.ChildProcess; first: T; drained: Promise<void>; tmp: string }
> {
  const tmp = await Deno.makeTempDir({ prefix: "distex-test-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", fixture.pathname, ...args],
    env: { TMPDIR: tmp },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const removeTmp = () => Deno.remove(tmp, { recursive: true });
  const reader = child.stdout.getReader();
  let text = "";
  const firstLine = (async () => {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    return text.split("\n")[0]!;
  })();
  let line: string;
  try {
    line = await withTimeout(firstLine, timeoutMs, `${fixture.pathname}`);
  } catch (error) {
    child.kill("SIGKILL");
    await reader.cancel().catch(() => {});
    await child.status;
    await removeTmp();
    throw error;
  }
  const drained = (async () => {
    try {
      while (!(await reader.read()).done) { /* drain */ }
    } catch { /* killed */ }
    await child.status;
    await removeTmp();
  })();
  if (!line.startsWith("{") && !line.startsWith("[")) {
    child.kill("SIGKILL");
    await drained;
    throw new Error(`fixture printed ${JSON.stringify(line)}, not JSON`);
  }
  return { child, first: JSON.parse(line) as T, drained, tmp };
}

/**
 * A temp dir the test hosts see too: under /var/tmp, as namespace hosts mount
 * a private tmpfs on /tmp. Disposing removes it.
 */
export async function hostTempDir(
  prefix: string,
): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ dir: "/var/tmp", prefix });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}
