// A task's log: streamed while the task runs, searchable, downloadable.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { download, request, routes } from "../api";
import { ErrorBox } from "./common";

/** Lines kept on screen; a longer log is downloadable whole. */
const MAX_CHARS = 4 << 20;

export function Logs(props: { runId: string; node: string; running: boolean }) {
  const [text, setText] = useState("");
  const [error, setError] = useState<string>();
  const [streaming, setStreaming] = useState(false);
  const [query, setQuery] = useState("");
  // The component's own lines by default; the SDK executor's and kfbox's on request.
  const [everything, setEverything] = useState(false);
  const box = useRef<HTMLPreElement>(null);
  const atBottom = useRef(true);

  useEffect(() => {
    const abort = new AbortController();
    setText("");
    setError(undefined);
    (async () => {
      try {
        setStreaming(props.running);
        const response = await request(routes.log(props.runId, props.node, props.running, !everything), {
          signal: abort.signal,
        });
        const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          setText((t) => {
            const next = t + value;
            return next.length > MAX_CHARS ? next.slice(next.length - MAX_CHARS) : next;
          });
        }
      } catch (e) {
        if (!abort.signal.aborted) setError((e as Error).message);
      } finally {
        if (!abort.signal.aborted) setStreaming(false);
      }
    })();
    return () => abort.abort();
    // A task that has just ended is read again, whole.
  }, [props.runId, props.node, props.running, everything]);

  useEffect(() => {
    const el = box.current;
    if (el && atBottom.current && !query) el.scrollTop = el.scrollHeight;
  }, [text, query]);

  const lines = useMemo(() => text.split("\n"), [text]);
  const matches = useMemo(() => {
    if (!query) return null;
    const q = query.toLowerCase();
    return lines.map((l, i) => [i, l] as const).filter(([, l]) => l.toLowerCase().includes(q));
  }, [lines, query]);

  return (
    <div class="logs">
      <div class="logs-tools">
        <input
          type="search"
          placeholder="Search the log"
          aria-label="Search the log"
          value={query}
          onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
        />
        {matches ? (
          <span class="muted" aria-live="polite">
            {matches.length} matching line{matches.length === 1 ? "" : "s"}
          </span>
        ) : null}
        <label class="log-everything" title="The SDK executor's lines ([KFP Executor], its ExecutorInput dump) and kfbox's notes">
          <input type="checkbox" checked={everything} onChange={(e) => setEverything((e.target as HTMLInputElement).checked)} />
          Show executor lines
        </label>
        {streaming ? (
          <span class="streaming" role="status">
            ● streaming
          </span>
        ) : null}
        <button type="button" onClick={() => download(routes.log(props.runId, props.node, false), `${props.node.replaceAll("/", "_")}.log`)}>
          Download
        </button>
      </div>
      <ErrorBox error={error} title="Cannot read the log" />
      <pre
        class="log-text"
        ref={box}
        tabIndex={0}
        aria-label={`Log of ${props.node}`}
        onScroll={(e) => {
          const el = e.currentTarget;
          atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
        }}
      >
        {matches
          ? matches.map(([i, l]) => (
              <div key={i}>
                <span class="line-no">{i + 1}</span>
                <Highlight text={l} query={query} />
              </div>
            ))
          : text || (streaming ? "Waiting for output…" : "The log is empty.")}
      </pre>
    </div>
  );
}

function Highlight(props: { text: string; query: string }) {
  const parts: preact.JSX.Element[] = [];
  const lower = props.text.toLowerCase();
  const q = props.query.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(q); i >= 0 && q; i = lower.indexOf(q, at)) {
    parts.push(<>{props.text.slice(at, i)}</>);
    parts.push(<mark>{props.text.slice(i, i + q.length)}</mark>);
    at = i + q.length;
  }
  parts.push(<>{props.text.slice(at)}</>);
  return <>{parts}</>;
}
