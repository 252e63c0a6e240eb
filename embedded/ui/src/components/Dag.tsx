// A directed graph of tasks nested in groups, laid out by dagre one level at a time: each
// expanded group is laid out inside, then placed in its parent as one box. Edges in the
// pipeline only join siblings, so every level is an ordinary DAG.
import dagre from "@dagrejs/dagre";
import { useEffect, useMemo, useState } from "preact/hooks";
import { StateIcon, stateLabel } from "./State";

export type DagItem = {
  id: string;
  parent?: string | null;
  label: string;
  /** A second line under the label. */
  detail?: string;
  kind: string;
  state: string;
  group: boolean;
  /** Whether the state is spelled out under the label (artifacts have none). */
  stateless?: boolean;
  /** Items in a group that sit side by side without edges (loop iterations): a grid. */
  grid?: boolean;
  /** What a group holds when its items are not among these (a large loop's iterations, loaded
   * when it is expanded). */
  holds?: number;
  title?: string;
};

export type DagEdge = { from: string; to: string };

const NODE_W = 188;
const NODE_H = 46;
const PAD = 14;
const HEADER = 28;
/** Nodes plus edges in one level above which the layout trades polish for speed. */
const LARGE = 120;

/** Where a node goes; states are not part of it, so a run's updates reuse the layout. */
type Placed = {
  id: string;
  x: number;
  y: number;
  w: number;
  h: number;
  inner?: Level;
};
type Level = { w: number; h: number; boxes: Placed[]; edges: { points: { x: number; y: number }[] }[] };

type Shape = {
  edges: DagEdge[];
  collapsed: Set<string>;
  byParent: Map<string | null, DagItem[]>;
  /** Lay out large levels as well as small ones (slower); otherwise quickly. */
  polish: boolean;
  /** Set when some level was laid out quickly. */
  quick: boolean;
};

function layout(shape: Shape, parent: string | null): Level {
  const { edges, collapsed, byParent } = shape;
  const children = byParent.get(parent) ?? [];
  const sized = children.map((item) => {
    if (item.group && !collapsed.has(item.id) && (byParent.get(item.id)?.length ?? 0) > 0) {
      const inner = layout(shape, item.id);
      return { id: item.id, w: Math.max(inner.w + 2 * PAD, NODE_W + 2 * PAD), h: inner.h + HEADER + PAD, inner };
    }
    return { id: item.id, w: NODE_W, h: NODE_H, inner: undefined };
  });
  const ids = new Set(children.map((c) => c.id));
  const mine = edges.filter((e) => ids.has(e.from) && ids.has(e.to) && e.from !== e.to);
  if (children.length && children.every((c) => c.grid) && mine.length === 0) {
    const columns = Math.max(1, Math.ceil(Math.sqrt(children.length * 1.5)));
    const colW: number[] = [];
    const rowH: number[] = [];
    sized.forEach((s, i) => {
      const c = i % columns;
      const r = Math.floor(i / columns);
      colW[c] = Math.max(colW[c] ?? 0, s.w);
      rowH[r] = Math.max(rowH[r] ?? 0, s.h);
    });
    const gap = 16;
    const xs = colW.map((_, c) => colW.slice(0, c).reduce((a, b) => a + b + gap, 0));
    const ys = rowH.map((_, r) => rowH.slice(0, r).reduce((a, b) => a + b + gap, 0));
    const boxes = sized.map((s, i) => ({ ...s, x: xs[i % columns], y: ys[Math.floor(i / columns)] }));
    return {
      w: xs[xs.length - 1] + colW[colW.length - 1],
      h: ys[ys.length - 1] + rowH[rowH.length - 1],
      boxes,
      edges: [],
    };
  }
  // dagre's best ranking and crossing reduction take about a second at 200 nodes: large
  // levels are first laid out with the quick ranker and one ordering pass, so the page
  // paints at once, and polished afterwards.
  const large = !shape.polish && sized.length + mine.length > LARGE;
  if (large) shape.quick = true;
  const g = new dagre.graphlib.Graph();
  g.setGraph({
    rankdir: "TB",
    nodesep: 22,
    ranksep: 42,
    marginx: 0,
    marginy: 0,
    ranker: large ? "tight-tree" : "network-simplex",
  });
  g.setDefaultEdgeLabel(() => ({}));
  for (const s of sized) g.setNode(s.id, { width: s.w, height: s.h });
  for (const e of mine) g.setEdge(e.from, e.to);
  dagre.layout(g, { disableOptimalOrderHeuristic: large });
  const boxes = sized.map((s) => {
    const n = g.node(s.id);
    return { ...s, x: n.x - s.w / 2, y: n.y - s.h / 2 };
  });
  const graph = g.graph();
  return {
    w: graph.width ?? 0,
    h: graph.height ?? 0,
    boxes,
    edges: mine.map((e) => ({ points: g.edge(e.from, e.to)?.points ?? [] })),
  };
}

function path(points: { x: number; y: number }[]): string {
  return points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
}

export function Dag(props: {
  items: DagItem[];
  edges: DagEdge[];
  selected?: string;
  onSelect?: (id: string) => void;
  /** Groups collapsed at first (the user's toggles win afterwards). */
  initiallyCollapsed?: (item: DagItem) => boolean;
  /** Told when the user expands or collapses a group. */
  onToggle?: (id: string, expanded: boolean) => void;
  label: string;
}) {
  const { items, edges, selected, onSelect } = props;
  const [toggled, setToggled] = useState<Map<string, boolean>>(new Map());
  const [zoom, setZoom] = useState(1);
  const collapsed = useMemo(() => {
    const set = new Set<string>();
    for (const item of items) {
      if (!item.group) continue;
      const choice = toggled.get(item.id) ?? props.initiallyCollapsed?.(item) ?? false;
      if (choice) set.add(item.id);
    }
    return set;
  }, [items, toggled]);
  // The layout depends on ids, nesting, edges and what is collapsed, not on states: a run's
  // page refreshing every second lays the graph out once.
  const structure = useMemo(
    () =>
      [
        items.map((i) => `${i.id}|${i.parent ?? ""}|${i.group ? 1 : 0}|${i.grid ? 1 : 0}`).join("\n"),
        edges.map((e) => `${e.from}>${e.to}`).join("\n"),
        [...collapsed].join("\n"),
      ].join("#"),
    [items, edges, collapsed],
  );
  const shape = (polish: boolean): Shape => {
    const byParent = new Map<string | null, DagItem[]>();
    for (const item of items) {
      const key = item.parent ?? null;
      if (!byParent.has(key)) byParent.set(key, []);
      byParent.get(key)!.push(item);
    }
    return { edges, collapsed, byParent, polish, quick: false };
  };
  const quick = useMemo(() => {
    const s = shape(false);
    const started = performance.now();
    const level = layout(s, null);
    // Read by tests/bench/ui.py to split first paint into layout and the rest.
    performance.measure("kfbox:graph-layout", { start: started });
    return { level, needsPolish: s.quick };
  }, [structure]);
  const [polished, setPolished] = useState<{ structure: string; level: Level }>();
  useEffect(() => {
    if (!quick.needsPolish) return;
    // Once the quick layout is on screen: a frame, then a moment for the browser to paint it.
    let timer = 0;
    const frame = requestAnimationFrame(() => {
      timer = window.setTimeout(() => setPolished({ structure, level: layout(shape(true), null) }), 100);
    });
    return () => {
      cancelAnimationFrame(frame);
      clearTimeout(timer);
    };
  }, [structure]);
  const level = polished?.structure === structure ? polished.level : quick.level;
  const byId = useMemo(() => new Map(items.map((i) => [i.id, i])), [items]);
  const toggle = (id: string) => {
    const collapse = !collapsed.has(id);
    setToggled((t) => new Map(t).set(id, collapse));
    props.onToggle?.(id, !collapse);
  };
  const width = level.w + 2 * PAD;
  const height = level.h + 2 * PAD;
  const count = (id: string) => items.filter((i) => i.parent === id).length;

  const renderLevel = (lvl: Level): preact.JSX.Element => (
    <>
      {lvl.edges.map((e, i) => (
        <path key={i} class="dag-edge" d={path(e.points)} marker-end="url(#dag-arrow)" />
      ))}
      {lvl.boxes.map((b) => {
        const item = byId.get(b.id)!;
        const isSelected = selected === item.id;
        if (b.inner) {
          return (
            <g key={item.id} transform={`translate(${b.x},${b.y})`} class={`dag-group kind-${item.kind} state-${item.state}`} data-group-id={item.id}>
              <rect class="dag-group-box" width={b.w} height={b.h} rx={8} />
              <foreignObject x={0} y={0} width={b.w} height={HEADER}>
                <div class="dag-group-header">
                  <button type="button" class="dag-toggle" aria-expanded="true" aria-label={`Collapse ${item.label}`} onClick={() => toggle(item.id)}>▾</button>
                  <button type="button" class={`dag-group-title${isSelected ? " selected" : ""}`} title={item.title ?? item.label} onClick={() => onSelect?.(item.id)}>
                    <StateIcon state={item.state} /> {item.label}
                    {item.detail ? <span class="muted"> · {item.detail}</span> : null}
                  </button>
                </div>
              </foreignObject>
              <g transform={`translate(${PAD},${HEADER})`}>{renderLevel(b.inner)}</g>
            </g>
          );
        }
        const hidden = item.group ? count(item.id) || (item.holds ?? 0) : 0;
        return (
          <g key={item.id} transform={`translate(${b.x},${b.y})`}>
            <foreignObject width={b.w} height={b.h}>
              <div
                class={`dag-node kind-${item.kind} state-${item.state}${isSelected ? " selected" : ""}${item.group ? " collapsed" : ""}`}
                role="button"
                tabIndex={0}
                data-node-id={item.id}
                data-state={item.state}
                aria-pressed={isSelected}
                aria-label={`${item.label}: ${item.stateless ? "" : stateLabel(item.state)}${item.detail ? `, ${item.detail}` : ""}`}
                title={item.title ?? item.label}
                onClick={() => onSelect?.(item.id)}
                onKeyDown={(ev) => {
                  // Keys on the expand button inside are the button's.
                  if (ev.target !== ev.currentTarget) return;
                  if (ev.key === "Enter" || ev.key === " ") {
                    ev.preventDefault();
                    onSelect?.(item.id);
                  } else if (item.group && (ev.key === "ArrowRight" || ev.key === "+")) {
                    toggle(item.id);
                  }
                }}
              >
                {item.stateless ? null : <StateIcon state={item.state} />}
                <span class="dag-node-text">
                  <span class="dag-node-label">{item.label}</span>
                  <span class="dag-node-detail">
                    {[item.stateless ? "" : stateLabel(item.state), item.detail ?? ""].filter(Boolean).join(" · ")}
                  </span>
                </span>
                {item.group && hidden > 0 ? (
                  <button
                    type="button"
                    class="dag-expand"
                    aria-label={`Expand ${item.label} (${hidden} inside)`}
                    onClick={(ev) => {
                      ev.stopPropagation();
                      toggle(item.id);
                    }}
                  >
                    ▸ {hidden}
                  </button>
                ) : null}
              </div>
            </foreignObject>
          </g>
        );
      })}
    </>
  );

  return (
    <div class="dag">
      <div class="dag-tools" role="toolbar" aria-label="Graph zoom">
        <button type="button" onClick={() => setZoom((z) => Math.max(0.25, z / 1.25))} aria-label="Zoom out">−</button>
        <span aria-live="polite">{Math.round(zoom * 100)}%</span>
        <button type="button" onClick={() => setZoom((z) => Math.min(2, z * 1.25))} aria-label="Zoom in">+</button>
        <button type="button" onClick={() => setZoom(1)}>100%</button>
      </div>
      <div class="dag-scroll">
        <svg
          width={width * zoom}
          height={height * zoom}
          viewBox={`0 0 ${width} ${height}`}
          role="group"
          aria-label={props.label}
        >
          <defs>
            <marker id="dag-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" class="dag-arrow" />
            </marker>
          </defs>
          <g transform={`translate(${PAD},${PAD})`}>{renderLevel(level)}</g>
        </svg>
      </div>
    </div>
  );
}
