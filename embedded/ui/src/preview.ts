// The first rows of a dataset: CSV/TSV, JSON or JSON Lines, Parquet; otherwise the start of
// the file as text.
import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { request, routes, type Artifact } from "./api";
import { bytes } from "./format";

export type Preview =
  | { kind: "table"; columns: string[]; rows: string[][]; note: string }
  | { kind: "text"; text: string; note: string }
  | { kind: "none"; note: string };

const ROWS = 50;
const TEXT_BYTES = 1 << 20;
const PARQUET_BYTES = 64 << 20;

function cell(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "object") return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));
  return String(v);
}

/** RFC 4180 fields, quotes included, for the first `limit` records. */
export function parseDelimited(text: string, delimiter: string, limit: number): string[][] {
  const records: string[][] = [];
  let field = "";
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length && records.length < limit; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === "") quoted = true;
    else if (c === delimiter) {
      record.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      record.push(field);
      records.push(record);
      record = [];
      field = "";
    } else field += c;
  }
  if ((field || record.length) && records.length < limit) records.push([...record, field]);
  return records;
}

function objectsTable(objects: Record<string, unknown>[], note: string): Preview {
  const columns = [...new Set(objects.flatMap((o) => Object.keys(o)))];
  return { kind: "table", columns, rows: objects.map((o) => columns.map((c) => cell(o[c]))), note };
}

export async function preview(artifact: Artifact): Promise<Preview> {
  const name = artifact.uri.toLowerCase();
  if (name.endsWith(".parquet") || name.endsWith(".pq")) return parquet(artifact);
  const response = await request(routes.artifactContent(artifact.artifact_id, TEXT_BYTES));
  const buffer = await response.arrayBuffer();
  const head = new Uint8Array(buffer.slice(0, 4));
  if (String.fromCharCode(...head) === "PAR1") return parquet(artifact);
  if (buffer.byteLength === 0) return { kind: "none", note: "The dataset is empty (or a directory with no files)." };
  const text = new TextDecoder("utf-8", { fatal: false }).decode(buffer);
  const partial = buffer.byteLength >= TEXT_BYTES ? ` (first ${bytes(TEXT_BYTES)})` : "";
  if (text.includes("\u0000")) return { kind: "none", note: `Binary data${partial}: download it to look inside.` };
  const trimmed = text.trimStart();
  if (name.endsWith(".json") || trimmed.startsWith("[") || trimmed.startsWith("{")) {
    try {
      const parsed = JSON.parse(text);
      const list = Array.isArray(parsed) ? parsed : [parsed];
      if (list.every((x) => x && typeof x === "object" && !Array.isArray(x)))
        return objectsTable(list.slice(0, ROWS), `JSON: first ${Math.min(ROWS, list.length)} of ${list.length} records`);
    } catch {
      const lines = text.split("\n").filter((l) => l.trim());
      try {
        const objects = lines.slice(0, ROWS).map((l) => JSON.parse(l));
        if (objects.every((x) => x && typeof x === "object"))
          return objectsTable(objects, `JSON Lines: first ${objects.length} records${partial}`);
      } catch {
        // Not JSON Lines either: shown as text below.
      }
    }
  }
  const delimiter = name.endsWith(".tsv") || (text.split("\n")[0].includes("\t") && !text.split("\n")[0].includes(",")) ? "\t" : ",";
  const firstLine = text.split("\n", 1)[0];
  if (name.endsWith(".csv") || name.endsWith(".tsv") || firstLine.includes(delimiter)) {
    const records = parseDelimited(text, delimiter, ROWS + 1);
    if (records.length > 1 && records[0].length > 1) {
      return {
        kind: "table",
        columns: records[0],
        rows: records.slice(1),
        note: `${delimiter === "\t" ? "TSV" : "CSV"}: header and first ${records.length - 1} rows${partial}`,
      };
    }
  }
  return { kind: "text", text: text.slice(0, 8000), note: `Text: the first ${Math.min(text.length, 8000).toLocaleString()} characters` };
}

async function parquet(artifact: Artifact): Promise<Preview> {
  const response = await request(routes.artifactContent(artifact.artifact_id, PARQUET_BYTES));
  const file = await response.arrayBuffer();
  if (file.byteLength >= PARQUET_BYTES)
    return { kind: "none", note: `Parquet larger than ${bytes(PARQUET_BYTES)}: download it to look inside.` };
  const metadata = parquetMetadata(file);
  const rows = await parquetReadObjects({ file, metadata, rowEnd: ROWS });
  return objectsTable(rows, `Parquet: first ${rows.length} of ${Number(metadata.num_rows).toLocaleString()} rows`);
}
