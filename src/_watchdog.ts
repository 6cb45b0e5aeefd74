/**
 * The worker's watchdog: a thread of its own (a Web Worker) that ends the
 * worker process when the pool goes away (its stdin lifeline reaches its
 * end) or when the process's resident memory passes `maxMemoryMB`. It runs
 * on its own event loop, so a task that blocks the worker's main thread
 * (`while (true) {}`) cannot stop it. Where only stdin is watched and the
 * worker leads its own process group (Linux), a `sh` process does the same
 * for a third of the thread's cost.
 *
 * It ends the process with SIGKILL: first its whole process group (the pool
 * starts each local worker as the leader of a group of its own, so what a
 * task started goes too; this needs `--allow-run`, without which a task can
 * start nothing), then the process itself (a process may always signal
 * itself). `Deno.exit()` in a Web Worker would end only that thread.
 *
 * The thread is loaded from a `blob:` URL, which needs no read permission and
 * works under the narrowest sandbox.
 *
 * A pool's local worker on Linux needs none of this for its lifeline: it is
 * started through a `sh` that leads its group and watches stdin for it
 * (`--lifeline group`, src/launcher.ts), and only a memory cap gives it a
 * thread.
 *
 * @module
 */

/** What the watchdog checks. */
export interface WatchdogOptions {
  /** End the process when its resident memory passes this many MiB. */
  maxMemoryMB?: number | undefined;
  /** How often memory is checked (ms); default 100. */
  pollMs?: number | undefined;
  /**
   * Whether stdin is the lifeline to watch; default true. False when the
   * process that started this one watches it instead (a local worker of a
   * pool on Linux, whose process group's leader, a `sh`, does; see
   * src/launcher.ts): then only memory is watched, if anything.
   */
  watchStdin?: boolean | undefined;
}

/** The message the thread gets: what to check. */
interface Start {
  maxMemoryMB: number;
  pollMs: number;
  watchStdin: boolean;
}

/**
 * The thread's code. It is sent as source text: it must be self-contained.
 */
function watchdogThread(): void {
  const scope = globalThis as unknown as {
    onmessage: ((event: MessageEvent<Start>) => void) | null;
    postMessage(message: unknown): void;
  };
  scope.onmessage = (event) => {
    scope.onmessage = null;
    const { maxMemoryMB, pollMs, watchStdin } = event.data;
    const end = (why: string | undefined): void => {
      if (why !== undefined) {
        try {
          Deno.stderr.writeSync(new TextEncoder().encode(why + "\n"));
        } catch { /* stderr gone: end all the same */ }
      }
      try {
        // The group this process leads, if any: what its tasks started.
        Deno.kill(-Deno.pid, "SIGKILL");
      } catch { /* no group of its own, or no --allow-run */ }
      Deno.kill(Deno.pid, "SIGKILL");
    };
    if (maxMemoryMB > 0) {
      const limit = maxMemoryMB * 1024 * 1024;
      setInterval(() => {
        const rss = Deno.memoryUsage().rss;
        if (rss > limit) {
          end(
            `distex worker: ran out of memory at ${
              Math.round(rss / 1048576)
            } MiB resident, which passed maxMemoryMB (${maxMemoryMB}); the worker was ended`,
          );
        }
      }, pollMs);
    }
    if (watchStdin) {
      (async () => {
        const buffer = new Uint8Array(64);
        try {
          while ((await Deno.stdin.read(buffer)) !== null) { /* drain */ }
        } catch { /* stdin broke: the same as closed */ }
        end(undefined);
      })();
    }
    scope.postMessage("watching");
  };
}

/** A watchdog thread that is loading, not yet watching. */
export interface Watchdog {
  /**
   * Tells the thread to start watching stdin (and memory). Call it after
   * reading everything the worker needs from stdin: from then on the thread
   * reads stdin, and its end ends the process.
   *
   * @returns Resolves once the thread is watching.
   * @throws {Error} when the thread cannot start.
   */
  start(): Promise<void>;
}

/**
 * The watchdog as a thread. Creating it blocks the caller while the thread's
 * JavaScript engine is set up (~12 ms, Deno 2.9.6, and ~17 ms of CPU in
 * all): the worker does it first, while the pool writes its key and accepts
 * its connection.
 */
function watchdogThreadOf(options: WatchdogOptions): Watchdog {
  const source = `(${watchdogThread.toString()})();`;
  const url = URL.createObjectURL(
    new Blob([source], { type: "text/javascript" }),
  );
  const thread = new Worker(url, { type: "module", name: "distex-watchdog" });
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  promise.catch(() => {}); // seen by start()'s caller
  thread.onmessage = () => {
    URL.revokeObjectURL(url);
    resolve();
  };
  thread.onerror = (event) => {
    event.preventDefault();
    URL.revokeObjectURL(url);
    reject(new Error(`the worker's watchdog thread failed: ${event.message}`));
  };
  let started = false;
  return {
    start() {
      if (!started) {
        started = true;
        thread.postMessage(
          {
            maxMemoryMB: options.maxMemoryMB ?? 0,
            pollMs: options.pollMs ?? 100,
            watchStdin: options.watchStdin ?? true,
          } satisfies Start,
        );
      }
      return promise;
    },
  };
}

/** The lifeline process's script: stdin's end kills the process group. */
const LIFELINE_SCRIPT = "cat >/dev/null; kill -KILL 0";

/**
 * The watchdog as a process, when it can be one: only stdin to watch (no
 * memory limit), Linux, `/bin/sh` may be run and this process leads its own
 * process group (as a pool's local worker does). `sh` inherits stdin, waits
 * for its end and then kills the group, this process included, as the thread
 * would: ~5 ms of CPU instead of ~17 (issue 14). It runs from the moment it
 * is spawned (stdin's end cannot be missed), so {@link Watchdog.start}
 * resolves at once; if it cannot be spawned, the thread is started instead.
 */
function watchdogProcess(options: WatchdogOptions): Watchdog | undefined {
  if (
    options.maxMemoryMB || options.watchStdin === false ||
    Deno.build.os !== "linux"
  ) return undefined;
  const may = (d: Deno.PermissionDescriptor) =>
    Deno.permissions.querySync(d).state === "granted";
  try {
    if (
      !may({ name: "run", command: "/bin/sh" }) ||
      !may({ name: "read", path: "/proc/self/stat" })
    ) return undefined;
    // Field 5 of /proc/self/stat (the 3rd after the command's name) is the
    // process group: `kill 0` must reach this process and what it started,
    // nothing of a group that others lead.
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const group = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
    if (group !== Deno.pid) return undefined;
  } catch {
    return undefined;
  }
  return {
    start() {
      try {
        new Deno.Command("/bin/sh", {
          args: ["-c", LIFELINE_SCRIPT],
          stdin: "inherit",
          stdout: "null",
          stderr: "null",
        }).spawn().unref();
        return Promise.resolve();
      } catch {
        return watchdogThreadOf(options).start();
      }
    },
  };
}

/**
 * Creates the watchdog, which reads nothing until {@link Watchdog.start}:
 * a process where it can be one, else a thread. Not for a worker with
 * nothing to watch (`watchStdin: false` and no memory cap): it needs none.
 *
 * @param options What to watch besides stdin.
 * @returns The watchdog, not yet watching.
 */
export function createWatchdog(options: WatchdogOptions = {}): Watchdog {
  return watchdogProcess(options) ?? watchdogThreadOf(options);
}
