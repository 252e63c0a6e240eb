// How times, durations and values read in the UI.

const EPOCH = "1970-01-01T00:00:00Z";

export function isSet(time?: string | null): time is string {
  return !!time && time !== EPOCH && !time.startsWith("1970-01-01");
}

export function when(time?: string | null): string {
  if (!isSet(time)) return "—";
  const d = new Date(time);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function duration(start?: string | null, end?: string | null, now = Date.now()): string {
  if (!isSet(start)) return "—";
  const ms = (isSet(end) ? Date.parse(end) : now) - Date.parse(start);
  if (!(ms >= 0)) return "—";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

export function value(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === undefined) return "";
  return JSON.stringify(v);
}

export function number(v: number): string {
  if (Number.isInteger(v)) return v.toLocaleString();
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e6 ? v.toPrecision(4).replace(/\.?0+$/, "") : v.toExponential(3);
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
