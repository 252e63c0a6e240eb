// Keyset pages: the server gives a token for the next page; going back pops the tokens seen.
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";

export type Pages = {
  /** The token of the page shown ("" for the first). */
  token: string;
  /** How many pages precede this one. */
  depth: number;
  restart: () => void;
  back: () => void;
  forward: (next: string) => void;
};

export function usePages(): Pages {
  const [tokens, setTokens] = useState<string[]>([""]);
  return {
    token: tokens[tokens.length - 1],
    depth: tokens.length - 1,
    restart: () => setTokens([""]),
    back: () => setTokens((t) => (t.length > 1 ? t.slice(0, -1) : t)),
    forward: (next) => setTokens((t) => [...t, next]),
  };
}

export function Pager(props: { pages: Pages; next?: string; label: string; children?: ComponentChildren }) {
  const { pages, next } = props;
  return (
    <nav class="pager" aria-label={props.label}>
      {props.children}
      <button type="button" disabled={pages.depth === 0} onClick={pages.back}>
        ← Previous
      </button>
      <button type="button" disabled={!next} onClick={() => next && pages.forward(next)}>
        Next →
      </button>
    </nav>
  );
}

/** A search box that restarts paging when it changes. */
export function SearchBox(props: { value: string; onChange: (v: string) => void; label: string; pages: Pages }) {
  return (
    <input
      type="search"
      placeholder={props.label}
      aria-label={props.label}
      value={props.value}
      onInput={(e) => {
        props.onChange((e.target as HTMLInputElement).value);
        props.pages.restart();
      }}
    />
  );
}
