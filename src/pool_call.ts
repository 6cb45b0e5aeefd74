/**
 * A call's way from the facade to the dispatcher: `run()`, `submit()` and
 * `apply()` (one task, bounded by the pool option `maxQueue`, with the
 * caller's frames on its error) and `runOnAll()` (one task per worker, after
 * the work in flight). `Blob` arguments are read before a task is sent.
 *
 * @module
 */
import { _readBlobs } from "./_codec.ts";
import { _callerStack, _withCallerStack, QueueFullError } from "./errors.ts";
import type { FunctionSpec } from "./function_ref.ts";
import type { TaskOptions } from "./options.ts";
import type { PoolParts } from "./pool_parts.ts";

/**
 * Calls `send()` once the bytes of the `Blob`s among `args` are read (at
 * once when there are none).
 */
export function sendWhenRead<T>(
  args: unknown[],
  send: () => Promise<T>,
): Promise<T> {
  const reading = _readBlobs(args);
  return reading ? reading.then(send) : send();
}

/**
 * Appends the caller's frames to a task's error. Run as a rejection handler:
 * V8's async stack there shows the code that awaited the task.
 */
function withCallerStack(error: unknown): never {
  throw _withCallerStack(error, _callerStack(withCallerStack));
}

/**
 * Queues one task (the facade checked its arguments).
 *
 * @returns A promise of its result.
 * @throws {QueueFullError} when `maxQueue` tasks already wait.
 */
export function call(
  parts: PoolParts,
  spec: FunctionSpec,
  args: unknown[],
  options: TaskOptions | undefined,
): Promise<unknown> {
  const maxQueue = parts.options.maxQueue ?? Infinity;
  if (parts.dispatcher.waiting >= maxQueue) {
    throw new QueueFullError(maxQueue);
  }
  return sendWhenRead(
    args,
    () => parts.submit(spec, args, "call", options),
  ).catch(withCallerStack);
}

/**
 * Runs a task once on every worker, after the work in flight has finished
 * and replacement workers have connected; holds the program meanwhile.
 *
 * @returns One result per worker.
 */
export function callOnAll(
  parts: PoolParts,
  spec: FunctionSpec,
  args: unknown[],
): Promise<unknown[]> {
  const { life, dispatcher, fleet } = parts;
  parts.open();
  return parts.keepAlive.during(async () => {
    await life.ready;
    await dispatcher.settledBefore();
    const workers = await fleet.allInService();
    return await Promise.all(
      workers.map((w) => dispatcher.runPinned(w, spec, args, "call")),
    );
  });
}
