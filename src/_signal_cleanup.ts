/**
 * Cleanup on SIGINT/SIGTERM: a process ended by one of these signals runs no
 * `finally` and no `await using`, so an open pool's private directory and
 * socket would stay behind. While at least one directory is registered, a
 * listener for each signal removes them all, then takes itself away and
 * raises the signal again, so the process still ends as the signal says
 * (exit status, shell message). A program that listens for the signal itself
 * keeps its own handling (it then sees the signal a second time).
 *
 * @module
 */

const SIGNALS: Deno.Signal[] = Deno.build.os === "windows"
  ? ["SIGINT"]
  : ["SIGINT", "SIGTERM"];

const dirs = new Set<string>();
const listeners = new Map<Deno.Signal, () => void>();

function install(): void {
  if (listeners.size > 0) return;
  for (const signal of SIGNALS) {
    const listener = () => {
      for (const dir of dirs) {
        try {
          Deno.removeSync(dir, { recursive: true });
        } catch { /* gone already, or not ours to remove */ }
      }
      dirs.clear();
      uninstall();
      try {
        Deno.kill(Deno.pid, signal);
      } catch { /* cannot raise it: the listener is gone, exit as it would */ }
    };
    try {
      Deno.addSignalListener(signal, listener);
      listeners.set(signal, listener);
    } catch { /* no signals here (permissions, platform): nothing to do */ }
  }
}

function uninstall(): void {
  for (const [signal, listener] of listeners) {
    try {
      Deno.removeSignalListener(signal, listener);
    } catch { /* already removed */ }
  }
  listeners.clear();
}

/**
 * Removes `dir` (recursively) if the process gets SIGINT or SIGTERM before
 * the returned function is called. Listeners exist only while some directory
 * is registered.
 *
 * @param dir A directory this process made and owns.
 * @returns Unregisters `dir` (call it once the directory is removed).
 */
function removeOnSignal(dir: string): () => void {
  dirs.add(dir);
  install();
  return () => {
    dirs.delete(dir);
    if (dirs.size === 0) uninstall();
  };
}

/**
 * Makes a private temp directory that a SIGINT or SIGTERM removes, with the
 * guard in place before the directory exists: made synchronously, so no
 * signal can arrive between its making and its guard (a supervisor killed
 * right after its directory appeared left it behind).
 *
 * @param prefix The directory name's prefix.
 * @returns The directory and the function that lifts its guard.
 */
export function makeGuardedTempDir(
  prefix: string,
): { dir: string; unguard: () => void } {
  install();
  let dir: string;
  try {
    dir = Deno.makeTempDirSync({ prefix });
  } catch (error) {
    if (dirs.size === 0) uninstall();
    throw error;
  }
  return { dir, unguard: removeOnSignal(dir) };
}
