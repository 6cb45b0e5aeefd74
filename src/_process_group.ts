/**
 * Process groups: a worker is spawned leading a group of its own (through
 * `setsid`, or `detached`; see src/launcher.ts), so a signal to the group
 * reaches whatever its tasks started too.
 *
 * @module
 */

/**
 * Signals `child`'s process group, or `child` alone when it leads none.
 * Never throws: a process that is gone is left alone.
 *
 * @param child A spawned process (that leads a group, or not).
 * @param signal The signal to send.
 */
export function signalGroup(
  child: Deno.ChildProcess,
  signal: Deno.Signal,
): void {
  try {
    Deno.kill(-child.pid, signal);
    return;
  } catch { /* no such group */ }
  try {
    child.kill(signal);
  } catch { /* already exited */ }
}
