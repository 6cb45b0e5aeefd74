/**
 * The remote end of an SSH host: one process per host, started by `ssh`,
 * that reads the pool's secret from stdin, starts N workers connecting to the
 * reverse tunnel's socket, restarts any that die, and stops them all when
 * stdin closes (the pool closed it, or the pool or the link died).
 *
 * @module
 */
import { parseCommandLine } from "./_args.ts";
import { readSecret, watchLifeline } from "./_stdin.ts";

interface Slot {
  id: number;
  child: Deno.ChildProcess | undefined;
  stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  failures: number;
  /** The pool asked for this worker to be killed. */
  killed: boolean;
}

/**
 * Runs the supervisor: `--unix <tunnel socket> --ids 1,2,3`.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function superviseMain(args: string[]): Promise<number> {
  const { values } = parseCommandLine(args, {
    unix: { type: "string" },
    ids: { type: "string" },
  });
  const path = values.unix;
  const ids = String(values.ids ?? "").split(",").filter(Boolean).map(Number);
  if (
    typeof path !== "string" || ids.length === 0 ||
    ids.some((id) => !Number.isInteger(id))
  ) {
    console.error(
      "usage: cli.ts remote --unix <socket path> --ids <id,id,...>",
    );
    return 2;
  }
  const { secret, reader } = await readSecret();
  const workerUrl = new URL("../worker.ts", import.meta.url).href;
  const line = new TextEncoder().encode(secret + "\n");
  let stopping = false;
  const stopped = Promise.withResolvers<void>();
  const slots: Slot[] = ids.map((id) => ({
    id,
    child: undefined,
    stdin: undefined,
    failures: 0,
    killed: false,
  }));
  // After the secret, stdin carries the pool's commands, one a line.
  // `kill <id>`: a worker stuck in sync code never notices that the pool
  // closed its connection, so the pool asks for it to be killed (and so
  // restarted).
  watchLifeline(reader, () => {
    stopping = true;
    stopped.resolve();
  }, (command) => {
    const kill = /^kill (\d+)$/.exec(command);
    const child = kill && slots.find((s) => s.id === Number(kill[1]))?.child;
    try {
      child?.kill("SIGKILL");
      if (child) slots.find((s) => s.child === child)!.killed = true;
    } catch { /* already gone */ }
  });

  const start = (slot: Slot): void => {
    if (stopping) return;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", workerUrl, "--unix", path, "--id", String(slot.id)],
      stdin: "piped",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    slot.child = child;
    const writer = child.stdin.getWriter();
    slot.stdin = writer;
    writer.write(line).catch(() => {});
    const began = Date.now();
    child.status.then((status) => {
      writer.close().catch(() => {});
      slot.child = undefined;
      if (stopping) return;
      console.error(
        `distex: worker ${slot.id} ended (${
          status.signal ? `signal ${status.signal}` : `code ${status.code}`
        }); restarting it`,
      );
      // Back off when workers die at once (say, the tunnel is gone), but not
      // after the pool ended one on purpose (it closed the worker's
      // connection: exit code 0; or it asked for a kill).
      const onPurpose = status.code === 0 || slot.killed;
      slot.killed = false;
      slot.failures = !onPurpose && Date.now() - began < 2_000
        ? slot.failures + 1
        : 0;
      const wait = Math.min(100 * 2 ** slot.failures, 5_000);
      setTimeout(() => start(slot), slot.failures ? wait : 0);
    });
  };

  for (const slot of slots) start(slot);
  await stopped.promise;
  const children = slots.map((s) => s.child).filter((c) => c !== undefined);
  // Closing their stdin makes the workers exit on their own.
  for (const slot of slots) slot.stdin?.close().catch(() => {});
  const timer = setTimeout(() => {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }
  }, 2_000);
  await Promise.all(children.map((c) => c.status));
  clearTimeout(timer);
  await Deno.remove(path).catch(() => {});
  return 0;
}
