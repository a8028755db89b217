// Types of `require("dynalease/otel")`, the OpenTelemetry bridge (needs @opentelemetry/api).

import type { Meter } from "@opentelemetry/api";
import type { KVStore, LockClient } from "./index";

/** The clients to instrument: one, an array, or an object of them by name (attribute `dynalease.client`). */
export type Instrumented = LockClient | KVStore | Array<LockClient | KVStore> | { [name: string]: LockClient | KVStore };

export interface InstrumentOptions {
  /** Default: `metrics.getMeter("dynalease", version)` of @opentelemetry/api's global meter provider. */
  meter?: Meter;
  /** Prepended to every instrument name (default `"dynalease."`). */
  prefix?: string;
}

/** What `instrument` registered. */
export interface Instrumentation {
  /** Unregisters the callback: the clients are no longer read. */
  stop(): void;
}

/**
 * Registers observable counters of the clients' `stats()` on an OpenTelemetry meter, read at
 * each collection: one per core counter by its snake_case name (`dynalease.acquisitions`,
 * `dynalease.lost_lease_expired`, ...), `dynalease.read_units`, `dynalease.write_units`,
 * `dynalease.acquire_wait.sum` (ms) and `dynalease.acquire_wait.bucket` (cumulative counts of
 * waits of at most `le` ms). Attributes: `dynalease.table`, `dynalease.partition` (KVStore),
 * `dynalease.client` (clients passed by name); clients with equal attributes are added together.
 */
export declare function instrument(clients: Instrumented, options?: InstrumentOptions): Instrumentation;
