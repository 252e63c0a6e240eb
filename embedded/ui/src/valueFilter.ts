// A filter over runs' parameters and metrics as people type it: `accuracy > 0.9 and model = rf`.
// A bare name means the one parameter or metric of that name; `parameters.lr` and
// `metrics.accuracy` say which. Numbers compare as numbers; quotes keep a value text.
import type { Predicate } from "./api";

const OPERATIONS: Record<string, Predicate["operation"]> = {
  "=": "EQUALS",
  "==": "EQUALS",
  "!=": "NOT_EQUALS",
  ">": "GREATER_THAN",
  ">=": "GREATER_THAN_EQUALS",
  "<": "LESS_THAN",
  "<=": "LESS_THAN_EQUALS",
};

export type Parsed = { predicates: Predicate[] } | { error: string };

/** The full name (`metrics.accuracy`) for what the user typed, or why there is none. */
export function resolveName(typed: string, names: string[]): string | { error: string } {
  if (names.includes(typed)) return typed;
  const matches = names.filter((n) => n.slice(n.indexOf(".") + 1) === typed);
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) return { error: `\`${typed}\` is both ${matches.join(" and ")}: say which` };
  return { error: `no run has a parameter or metric \`${typed}\`` };
}

export function parseValueFilter(text: string, names: string[]): Parsed {
  const predicates: Predicate[] = [];
  for (const part of text.split(/\s+and\s+/i).map((p) => p.trim()).filter(Boolean)) {
    const match = /^([A-Za-z_][\w.-]*)\s*(==|!=|>=|<=|=|>|<)\s*(.+)$/.exec(part);
    if (!match) return { error: `\`${part}\` is not NAME OP VALUE (OP one of = != > >= < <=)` };
    const [, typed, op, raw] = match;
    const key = resolveName(typed, names);
    if (typeof key !== "string") return key;
    const quoted = /^(["'])(.*)\1$/.exec(raw.trim());
    const number = Number(raw);
    const predicate: Predicate = { key, operation: OPERATIONS[op] };
    if (!quoted && raw.trim() !== "" && Number.isFinite(number)) predicate.double_value = number;
    else predicate.string_value = quoted ? quoted[2] : raw.trim();
    predicates.push(predicate);
  }
  return { predicates };
}
