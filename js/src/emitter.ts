/**
 * Typed subscriptions: `on(type, fn)` returns the function that ends it.
 * @module
 */
import type { ComfyEvent, ComfyEventType, EventOf, Unsubscribe } from './types.js';

/** A listener of one event type. */
export type Listener<T extends ComfyEventType> = (event: EventOf<T>) => void;

/** Fans events out to listeners by type, in order, isolating their exceptions. */
export class EventHub {
  private readonly byType = new Map<ComfyEventType, Set<(event: ComfyEvent) => void>>();
  private readonly any = new Set<(event: ComfyEvent) => void>();
  private readonly onError: (error: unknown) => void;

  /** A hub reporting listener exceptions to `onError`. */
  constructor(onError: (error: unknown) => void) {
    this.onError = onError;
  }

  /** Listens to one event type. */
  on<T extends ComfyEventType>(type: T, listener: Listener<T>): Unsubscribe {
    let set = this.byType.get(type);
    if (!set) {
      set = new Set();
      this.byType.set(type, set);
    }
    const wrapped = listener as (event: ComfyEvent) => void;
    set.add(wrapped);
    return () => {
      set.delete(wrapped);
    };
  }

  /** Listens to every event. */
  onAny(listener: (event: ComfyEvent) => void): Unsubscribe {
    this.any.add(listener);
    return () => {
      this.any.delete(listener);
    };
  }

  /** Delivers events in order. */
  emit(events: readonly ComfyEvent[]): void {
    for (const event of events) {
      const set = this.byType.get(event.type);
      if (set) for (const l of [...set]) this.call(l, event);
      for (const l of [...this.any]) this.call(l, event);
    }
  }

  /** Live listeners (for leak checks). */
  get size(): number {
    let n = this.any.size;
    for (const set of this.byType.values()) n += set.size;
    return n;
  }

  /** Drops every listener. */
  clear(): void {
    this.byType.clear();
    this.any.clear();
  }

  private call(listener: (event: ComfyEvent) => void, event: ComfyEvent): void {
    try {
      listener(event);
    } catch (error) {
      this.onError(error);
    }
  }
}
