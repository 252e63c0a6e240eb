import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";

export function ErrorBox(props: { error?: string; title?: string }) {
  if (!props.error) return null;
  return (
    <div class="error-box" role="alert">
      <strong>{props.title ?? "Something went wrong"}</strong>
      <p>{props.error}</p>
    </div>
  );
}

export function Loading(props: { what: string }) {
  return (
    <p class="muted" role="status">
      Loading {props.what}…
    </p>
  );
}

export function Empty(props: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty" role="status">
      <h2>{props.title}</h2>
      {props.children}
    </div>
  );
}

export function CopyText(props: { text: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.text);
    } catch {
      // Clipboard refused (plain http beyond loopback): select the text instead.
      const range = document.createRange();
      const code = document.getElementById(`copy-${props.text.length}`);
      if (code) {
        range.selectNodeContents(code);
        getSelection()?.removeAllRanges();
        getSelection()?.addRange(range);
      }
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };
  return (
    <div class="copy">
      <code id={`copy-${props.text.length}`}>{props.text}</code>
      <button type="button" onClick={copy} aria-label={`Copy ${props.label ?? props.text}`}>
        {copied ? "Copied" : "Copy"}
      </button>
    </div>
  );
}

export function Tabs<T extends string>(props: {
  tabs: { id: T; label: string }[];
  current: T;
  onChange: (id: T) => void;
  label: string;
}) {
  return (
    <div class="tabs" role="tablist" aria-label={props.label}>
      {props.tabs.map((t) => (
        <button
          type="button"
          role="tab"
          key={t.id}
          aria-selected={t.id === props.current}
          class={t.id === props.current ? "active" : ""}
          onClick={() => props.onChange(t.id)}
          onKeyDown={(ev) => {
            const i = props.tabs.findIndex((x) => x.id === props.current);
            if (ev.key === "ArrowRight") props.onChange(props.tabs[(i + 1) % props.tabs.length].id);
            if (ev.key === "ArrowLeft") props.onChange(props.tabs[(i + props.tabs.length - 1) % props.tabs.length].id);
          }}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}

/** Key-value rows. */
export function Fields(props: { rows: [string, ComponentChildren][] }) {
  return (
    <dl class="fields">
      {props.rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}
