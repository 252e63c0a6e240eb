import { useCallback, useEffect, useRef, useState } from "preact/hooks";

export type Loaded<T> = {
  data?: T;
  error?: string;
  loading: boolean;
  reload: () => void;
};

/**
 * Load `fetcher`'s value and, with `everyMs`, load it again on that period while the page is
 * visible and `live` holds. Keeps the last value while reloading, so lists do not flicker;
 * with `keep`, also while `deps` change (another page of the same thing).
 */
export function useLoad<T>(
  fetcher: () => Promise<T>,
  deps: unknown[],
  options: { everyMs?: number; live?: (data: T) => boolean; keep?: boolean } = {},
): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean }>({
    loading: true,
  });
  const generation = useRef(0);
  const latest = useRef<T | undefined>(undefined);
  // The newest `live`, so the timer never asks a stale closure.
  const live = useRef(options.live);
  live.current = options.live;
  const load = useCallback(async () => {
    const mine = ++generation.current;
    try {
      const data = await fetcher();
      if (mine !== generation.current) return;
      latest.current = data;
      setState({ data, loading: false });
    } catch (e) {
      if (mine !== generation.current) return;
      setState((s) => ({ data: s.data, error: (e as Error).message, loading: false }));
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  useEffect(() => {
    if (options.keep) setState((s) => ({ ...s, loading: true }));
    else {
      latest.current = undefined;
      setState({ loading: true });
    }
    load();
  }, [load]);
  useEffect(() => {
    if (!options.everyMs) return;
    const timer = setInterval(() => {
      if (document.hidden) return;
      const data = latest.current;
      if (data !== undefined && live.current && !live.current(data)) return;
      load();
    }, options.everyMs);
    return () => clearInterval(timer);
  }, [load, options.everyMs]);
  return { ...state, reload: load };
}

/** Milliseconds since the epoch now, refreshed every second (for live durations). */
export function useNow(active: boolean): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [active]);
  return now;
}
