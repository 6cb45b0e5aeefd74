/**
 * A pool's parts without processes or sockets, for the facade's helpers
 * (`pool_close.ts`, `pool_map.ts`): the real life cycle and keep-alive
 * switch over a dispatcher and a fleet that record what they are asked.
 *
 * @module
 */
import { KeepAlive } from "../src/pool_keep_alive.ts";
import { Lifecycle } from "../src/pool_lifecycle.ts";
import type { PoolParts } from "../src/pool_parts.ts";

/** Fake parts, the log of what they were asked, and knobs. */
export interface FakeParts {
  parts: PoolParts;
  /** What was asked, in order: `open`, `submit …`, `teardown`, … */
  log: string[];
  /** Tasks the fake dispatcher holds (what `liveCount` reports). */
  live: { count: number };
}

/** Fake parts of a pool with `targetWorkers` workers, not started. */
export function fakeParts(
  options: { retries?: number; targetWorkers?: number } = {},
): FakeParts {
  const log: string[] = [];
  const live = { count: 0 };
  const life = new Lifecycle();
  const dispatcher = {
    get liveCount() {
      return live.count;
    },
    waiting: 0,
    submit(_spec: unknown, args: unknown[], kind: string): Promise<unknown> {
      log.push(`submit ${kind} ${JSON.stringify(args)}`);
      return Promise.resolve(args);
    },
    submitTo(
      _spec: unknown,
      args: unknown[],
      kind: string,
      _options: unknown,
      tag: unknown,
      resolve: (value: unknown, tag: unknown) => void,
    ): void {
      log.push(`submitTo ${kind} ${JSON.stringify(args)}`);
      resolve(args, tag);
    },
    slots: (expected: number) => expected * 2,
    itemMs: (fnId: number) => fnId / 10,
    failAll(reason: Error) {
      log.push(`failAll ${reason.name}`);
    },
    close() {
      log.push("dispatcher.close");
    },
  };
  const fleet = {
    targetWorkers: options.targetWorkers ?? 3,
    teardown() {
      log.push("teardown");
      return Promise.resolve();
    },
    close() {
      log.push("fleet.close");
      return Promise.resolve();
    },
  };
  const keepAlive = new KeepAlive({
    setRef: (on) => log.push(`ref ${on}`),
    idle: () => life.phase === "running" && live.count === 0,
  });
  const parts = {
    options: options.retries === undefined ? {} : { retries: options.retries },
    life,
    dispatcher,
    fleet,
    keepAlive,
    open() {
      log.push("open");
      life.checkOpen();
      life.start();
      keepAlive.hold();
    },
    submit(spec: unknown, args: unknown[], kind: string) {
      parts.open();
      return dispatcher.submit(spec, args, kind);
    },
  } as unknown as PoolParts;
  return { parts, log, live };
}
