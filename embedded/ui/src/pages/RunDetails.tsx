// One run: its graph coloured by task state and redrawn live, the selected task's details,
// logs and artifacts, and the run's artifacts and parameters.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { get, post, routes, type Artifact, type Experiment, type Graph, type GraphNode, type LoopPage, type Run } from "../api";
import { ArtifactView, shortType } from "../components/Artifact";
import { Dag, type DagEdge, type DagItem } from "../components/Dag";
import { Logs } from "../components/Logs";
import { RunForm } from "../components/RunForm";
import { StateBadge, isActive, stateLabel } from "../components/State";
import { ErrorBox, Fields, Loading, Tabs } from "../components/common";
import { duration, isSet, value, when } from "../format";
import { useLoad, useNow } from "../hooks";
import { href, navigate, replaceQuery } from "../router";

type RunTab = "graph" | "artifacts" | "details";

export function RunDetails(props: { runId: string; task?: string; tab?: string }) {
  const { runId } = props;
  const run = useLoad(() => get<Run>(routes.run(runId)), [runId], {
    everyMs: 1000,
    live: (r) => isActive(r.state),
  });
  const active = run.data ? isActive(run.data.state) : true;
  // The page of a large loop's iterations the graph shows (large loops come collapsed).
  const [page, setPage] = useState<LoopPage>();
  const graph = useLoad(() => get<Graph>(routes.runGraph(runId, page)), [runId, page?.loop, page?.offset, page?.state], {
    everyMs: 1000,
    live: () => active,
    // Another page of a loop: the graph stays on screen (and keeps what is expanded) meanwhile.
    keep: true,
  });
  const artifacts = useLoad(() => get<{ artifacts: Artifact[] }>(routes.runArtifacts(runId)), [runId], {
    everyMs: 2000,
    live: () => active,
  });
  const experiment = useLoad(
    async () => (run.data?.experiment_id ? get<Experiment>(routes.experiment(run.data.experiment_id)) : undefined),
    [run.data?.experiment_id],
  );
  const now = useNow(active);
  // When a run seen running ends, read the graph and artifacts once more for their final
  // states (their polling stops with the run).
  const seenActive = useRef(false);
  useEffect(() => {
    if (!run.data) return;
    if (isActive(run.data.state)) seenActive.current = true;
    else if (seenActive.current) {
      seenActive.current = false;
      graph.reload();
      artifacts.reload();
    }
  }, [run.data?.state]);
  const [actionError, setActionError] = useState<string>();
  const [rerun, setRerun] = useState(false);
  const tab = (props.tab as RunTab) || "graph";

  if (run.error && !run.data) return <ErrorBox error={run.error} title={`Cannot show run ${runId}`} />;
  if (!run.data) return <Loading what="the run" />;
  const r = run.data;
  const act = async (verb: string) => {
    setActionError(undefined);
    try {
      await post(`${routes.run(runId)}:${verb}`);
      run.reload();
      graph.reload();
    } catch (e) {
      setActionError((e as Error).message);
    }
  };
  const select = (task?: string) => replaceQuery({ task, tab: props.tab });

  return (
    <div class="run-details">
      <div class="page-header">
        <div>
          <p class="crumbs">
            <a href={href("/runs")}>Runs</a>
            {experiment.data ? (
              <>
                {" / "}
                <a href={href(`/experiments/details/${experiment.data.experiment_id}`)}>{experiment.data.display_name}</a>
              </>
            ) : null}
          </p>
          <h1>
            {r.display_name} <StateBadge state={r.state} />
          </h1>
          <p class="muted">
            {r.pipeline_name ? <>Pipeline {r.pipeline_name} · </> : null}
            started {when(r.created_at)} · {isSet(r.finished_at) ? "took" : "running for"} {duration(r.created_at, r.finished_at, now)}
          </p>
        </div>
        <div class="actions">
          {active ? (
            <button type="button" class="danger" onClick={() => act("terminate")} disabled={r.state === "CANCELING"}>
              Terminate
            </button>
          ) : null}
          {r.state === "FAILED" || r.state === "CANCELED" ? (
            <button type="button" onClick={() => act("retry")}>
              Retry
            </button>
          ) : null}
          {r.pipeline_version_reference || r.pipeline_spec ? (
            <button type="button" aria-expanded={rerun} onClick={() => setRerun(!rerun)}>
              Rerun
            </button>
          ) : null}
          <button type="button" onClick={() => act(r.storage_state === "ARCHIVED" ? "unarchive" : "archive")}>
            {r.storage_state === "ARCHIVED" ? "Restore" : "Archive"}
          </button>
        </div>
      </div>
      <ErrorBox error={actionError} title="The server refused" />
      {rerun && graph.data ? (
        <RunForm
          title="Run it again"
          spec={r.pipeline_spec}
          source={r.pipeline_version_reference ? { pipeline_version_reference: r.pipeline_version_reference } : { pipeline_spec: r.pipeline_spec }}
          name={`${r.display_name} (rerun)`}
          values={graph.data.parameters ?? r.runtime_config?.parameters}
          experimentId={r.experiment_id}
        />
      ) : null}
      {r.error ? <ErrorBox error={r.error.message} title="The run failed" /> : null}
      <Tabs<RunTab>
        label="Run views"
        current={tab}
        onChange={(t) => replaceQuery({ task: props.task, tab: t === "graph" ? undefined : t })}
        tabs={[
          { id: "graph", label: "Graph" },
          { id: "artifacts", label: `Artifacts${artifacts.data ? ` (${artifacts.data.artifacts.length})` : ""}` },
          { id: "details", label: "Parameters & details" },
        ]}
      />
      {tab === "graph" ? (
        <GraphView
          runId={runId}
          graph={graph}
          artifacts={artifacts.data?.artifacts}
          selected={props.task}
          onSelect={select}
          now={now}
          onPage={setPage}
        />
      ) : tab === "artifacts" ? (
        <RunArtifacts artifacts={artifacts.data?.artifacts} error={artifacts.error} />
      ) : (
        <RunFields run={r} graph={graph.data} />
      )}
    </div>
  );
}

/** A phase as the graph shows it: what is happening, without the environment's long name
 * ("12/79 packages, 30.1 MiB" rather than "Python environment with pandas...: 12/79 ..."). */
function phaseWords(phase: string): string {
  const at = phase.lastIndexOf(": ");
  return `preparing: ${at >= 0 ? phase.slice(at + 2) : phase}`;
}

/** "4,990 succeeded, 10 failed" */
function stateCounts(counts: Record<string, number>): string {
  return Object.entries(counts)
    .map(([s, n]) => `${n.toLocaleString("en")} ${stateLabel(s).toLowerCase()}`)
    .join(", ");
}

function itemOf(node: GraphNode): DagItem {
  const details: string[] = [];
  if (node.kind === "loop") details.push(node.iteration_count != null ? `${node.iteration_count} iterations` : "loop");
  if (node.paged && node.iteration_states) details.push(stateCounts(node.iteration_states));
  if (node.kind === "condition") details.push("condition");
  if (node.kind === "dag") details.push("pipeline");
  if (node.kind === "importer") details.push("importer");
  if ((node.attempts ?? 0) > 1) details.push(`retried, ${node.attempts} attempts`);
  if (node.phase) details.push(phaseWords(node.phase));
  const label = node.kind === "iteration" ? node.name.replace("iteration-", "iteration ") : node.name;
  return {
    id: node.id,
    parent: node.parent,
    label,
    detail: details.join(" · ") || undefined,
    kind: node.kind + ((node.attempts ?? 0) > 1 ? " retried" : ""),
    state: node.state,
    group: ["dag", "condition", "loop", "iteration"].includes(node.kind),
    grid: node.kind === "iteration",
    holds: node.paged ? Object.values(node.iteration_states ?? {}).reduce((a, b) => a + b, 0) : undefined,
    title: `${node.id} (${node.component})${node.condition ? `\nif ${node.condition}` : ""}`,
  };
}

const ARTIFACT_NODE = "artifact:";

/**
 * The graph with each step's output artifacts drawn between it and the steps that read them,
 * as the KFP UI draws them: an edge from a step to a step that one of its artifacts now
 * connects is replaced by the path through the artifact.
 */
function withArtifacts(g: Graph, items: DagItem[], artifacts: Artifact[]): { items: DagItem[]; edges: DagEdge[] } {
  const typeOf = new Map(artifacts.map((a) => [a.artifact_id, shortType(a.type)]));
  const drawn = new Map<number, { item: DagItem; producer: string }>();
  const added: DagItem[] = [];
  const edges: DagEdge[] = [];
  for (const n of g.nodes) {
    if (n.kind !== "container" && n.kind !== "importer") continue;
    for (const [name, id] of n.output_artifacts ?? []) {
      if (drawn.has(id)) continue;
      const item: DagItem = {
        id: `${ARTIFACT_NODE}${id}`,
        parent: n.parent,
        label: name,
        detail: typeOf.get(id) ?? "artifact",
        kind: "artifact",
        state: "ARTIFACT",
        stateless: true,
        group: false,
        title: `${name} of ${n.id} (#${id}): open the artifact`,
      };
      drawn.set(id, { item, producer: n.id });
      added.push(item);
      edges.push({ from: n.id, to: item.id });
    }
  }
  const through = new Set<string>();
  for (const n of g.nodes) {
    for (const [, id] of n.input_artifacts ?? []) {
      const artifact = drawn.get(id);
      // Edges join siblings only: an artifact passed into a nested pipeline keeps its task edge.
      if (!artifact || (artifact.item.parent ?? null) !== (n.parent ?? null)) continue;
      edges.push({ from: artifact.item.id, to: n.id });
      through.add(`${artifact.producer}>${n.id}`);
    }
  }
  const kept = g.edges.filter((e) => !through.has(`${e.from}>${e.to}`));
  return { items: [...items, ...added], edges: [...kept, ...edges] };
}

function GraphView(props: {
  runId: string;
  graph: ReturnType<typeof useLoad<Graph>>;
  artifacts?: Artifact[];
  selected?: string;
  onSelect: (id?: string) => void;
  now: number;
  onPage: (page?: LoopPage) => void;
}) {
  const g = props.graph.data;
  const [showArtifacts, setShowArtifacts] = useState(false);
  const drawn = useMemo(() => {
    const items = g ? g.nodes.map(itemOf) : [];
    return g && showArtifacts ? withArtifacts(g, items, props.artifacts ?? []) : { items, edges: g?.edges ?? [] };
  }, [g, showArtifacts, props.artifacts]);
  // The tab the task panel opens on, when a click asked for one.
  const [startOn, setStartOn] = useState<TaskTab>();
  const iterationsOf = useMemo(() => {
    const count = new Map<string, number>();
    for (const n of g?.nodes ?? []) if (n.kind === "iteration" && n.parent) count.set(n.parent, (count.get(n.parent) ?? 0) + 1);
    return count;
  }, [g]);
  if (props.graph.error && !g) return <ErrorBox error={props.graph.error} title="Cannot draw the graph" />;
  if (!g) return <Loading what="the graph" />;
  const node = g.nodes.find((n) => n.id === props.selected);
  const steps = Object.values(g.step_states).reduce((a, b) => a + b, 0);
  const paged = g.page ? g.nodes.find((n) => n.id === g.page!.loop) : undefined;
  return (
    <div class={`graph-layout${node ? " with-panel" : ""}`}>
      <div class="graph-main">
        <div class="graph-bar">
          <p class="muted summary" aria-live="polite">
            {steps.toLocaleString("en")} steps: {stateCounts(g.step_states)}
          </p>
          {g.page && paged ? <LoopPager loop={paged} page={g.page} onPage={props.onPage} /> : null}
          <label class="check">
            <input type="checkbox" checked={showArtifacts} onChange={(e) => setShowArtifacts((e.target as HTMLInputElement).checked)} /> Show
            artifacts
          </label>
        </div>
        <Dag
          label="Pipeline graph"
          items={drawn.items}
          edges={drawn.edges}
          selected={props.selected}
          onSelect={(id) => {
            if (id.startsWith(ARTIFACT_NODE)) return navigate(`/artifacts/${id.slice(ARTIFACT_NODE.length)}`);
            if (id === props.selected) return props.onSelect(undefined);
            // An iteration of one step stands for that step: its logs open.
            const clicked = g.nodes.find((n) => n.id === id);
            const inside = g.nodes.filter((n) => n.parent === id);
            const only = inside.length === 1 && (inside[0].kind === "container" || inside[0].kind === "importer") ? inside[0] : undefined;
            if (clicked?.kind === "iteration" && only) {
              setStartOn("logs");
              return props.onSelect(only.id);
            }
            setStartOn(undefined);
            props.onSelect(id);
          }}
          initiallyCollapsed={(item) =>
            (item.kind === "iteration" && (iterationsOf.get(item.parent ?? "") ?? 0) > 3) ||
            // A paged loop (it `holds` iterations the graph leaves out) is open while the graph
            // holds a page of it; a graph without pages (a run recorded without its spec)
            // holds every iteration, and more than 40 start collapsed.
            (item.kind === "loop" && (item.holds != null ? g.page?.loop !== item.id : (iterationsOf.get(item.id) ?? 0) > 40))
          }
          onToggle={(id, expanded) => {
            // A large loop's iterations come from the server a page at a time; a page already
            // asked for (from the task panel's counts) stays.
            if (!g.nodes.find((n) => n.id === id)?.paged) return;
            if (expanded && g.page?.loop !== id) props.onPage({ loop: id, offset: 0 });
            else if (!expanded && g.page?.loop === id) props.onPage(undefined);
          }}
        />
      </div>
      {node ? (
        <TaskPanel
          key={node.id}
          runId={props.runId}
          node={node}
          onPage={props.onPage}
          artifacts={props.artifacts?.filter((a) => a.task === node.id) ?? []}
          onClose={() => props.onSelect(undefined)}
          now={props.now}
          startOn={startOn}
        />
      ) : null}
    </div>
  );
}

type TaskTab = "overview" | "logs" | "artifacts";

/** Which of a large loop's iterations the graph shows: a page, of one state or all, and the way to the others. */
function LoopPager(props: { loop: GraphNode; page: NonNullable<Graph["page"]>; onPage: (page?: LoopPage) => void }) {
  const { page, loop } = props;
  const first = Math.min(page.offset + 1, page.matched);
  const last = Math.min(page.offset + page.limit, page.matched);
  const go = (offset: number, state = page.state) => props.onPage({ loop: page.loop, offset, state });
  return (
    <div class="loop-pager" role="group" aria-label={`Iterations of ${loop.name}`}>
      <span>
        {loop.name}: iterations {first.toLocaleString("en")}–{last.toLocaleString("en")} of {page.matched.toLocaleString("en")}
        {page.state ? ` ${stateLabel(page.state).toLowerCase()}` : ""}
      </span>
      <select
        aria-label="Show iterations in state"
        value={page.state ?? ""}
        onChange={(e) => go(0, (e.target as HTMLSelectElement).value || undefined)}
      >
        <option value="">all states</option>
        {Object.entries(loop.iteration_states ?? {}).map(([s, n]) => (
          <option key={s} value={s}>
            {stateLabel(s).toLowerCase()} ({n.toLocaleString("en")})
          </option>
        ))}
      </select>
      <button type="button" disabled={page.offset === 0} onClick={() => go(Math.max(0, page.offset - page.limit))}>
        ‹ Previous
      </button>
      <button type="button" disabled={last >= page.matched} onClick={() => go(page.offset + page.limit)}>
        Next ›
      </button>
    </div>
  );
}

function TaskPanel(props: {
  runId: string;
  node: GraphNode;
  artifacts: Artifact[];
  onClose: () => void;
  now: number;
  startOn?: TaskTab;
  onPage: (page?: LoopPage) => void;
}) {
  const n = props.node;
  const hasLog = (n.kind === "container" || n.kind === "importer") && n.execution_id != null && n.state !== "SKIPPED";
  const [tab, setTab] = useState<TaskTab>(props.startOn ?? (hasLog && n.state !== "SUCCEEDED" && n.state !== "CACHED" ? "logs" : "overview"));
  const tabs: { id: TaskTab; label: string }[] = [{ id: "overview", label: "Overview" }];
  if (hasLog) tabs.push({ id: "logs", label: "Logs" });
  if (props.artifacts.length) tabs.push({ id: "artifacts", label: `Artifacts (${props.artifacts.length})` });
  const current = tabs.some((t) => t.id === tab) ? tab : "overview";
  return (
    <aside class="task-panel" aria-label={`Task ${n.id}`}>
      <header>
        <h2>
          {n.name} <StateBadge state={n.state} />
        </h2>
        <button type="button" class="close" onClick={props.onClose} aria-label="Close the task panel">
          ✕
        </button>
      </header>
      <Tabs<TaskTab> label="Task views" tabs={tabs} current={current} onChange={setTab} />
      {current === "overview" ? (
        <TaskOverview node={n} now={props.now} onPage={props.onPage} />
      ) : current === "logs" ? (
        <Logs runId={props.runId} node={n.id} running={n.state === "RUNNING"} />
      ) : (
        props.artifacts.map((a) => <ArtifactView key={a.artifact_id} artifact={a} />)
      )}
    </aside>
  );
}

function Params(props: { title: string; values?: Record<string, unknown> }) {
  const entries = Object.entries(props.values ?? {});
  if (!entries.length) return null;
  return (
    <>
      <h3>{props.title}</h3>
      <table class="params">
        <tbody>
          {entries.map(([k, v]) => (
            <tr key={k}>
              <th scope="row">{k}</th>
              <td>
                <code>{value(v)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function ArtifactLinks(props: { title: string; list?: [string, number][] }) {
  if (!props.list?.length) return null;
  return (
    <>
      <h3>{props.title}</h3>
      <ul class="artifact-links">
        {props.list.map(([name, id]) => (
          <li key={`${name}-${id}`}>
            <a href={href(`/artifacts/${id}`)}>{name}</a> <span class="muted">#{id}</span>
          </li>
        ))}
      </ul>
    </>
  );
}

function TaskOverview(props: { node: GraphNode; now: number; onPage: (page?: LoopPage) => void }) {
  const n = props.node;
  const rows: [string, preact.ComponentChildren][] = [
    ["Task", <code>{n.id}</code>],
    ["Component", n.component],
    ["State", stateLabel(n.state)],
  ];
  if (n.condition) rows.push(["Runs if", <code>{n.condition}</code>]);
  if (n.iteration_count != null) rows.push(["Iterations", n.iteration_count.toLocaleString("en")]);
  if (n.paged && n.iteration_states)
    rows.push([
      "By state",
      <span class="iteration-states">
        {Object.entries(n.iteration_states).map(([s, count]) => (
          <button key={s} type="button" class="link" onClick={() => props.onPage({ loop: n.id, offset: 0, state: s })}>
            {count.toLocaleString("en")} {stateLabel(s).toLowerCase()}
          </button>
        ))}
      </span>,
    ]);
  if (isSet(n.started_at)) rows.push(["Started", when(n.started_at)]);
  if (isSet(n.finished_at)) rows.push(["Finished", when(n.finished_at)]);
  if (isSet(n.started_at)) rows.push(["Duration", duration(n.started_at, n.finished_at, props.now)]);
  if (n.attempts) rows.push(["Attempts", n.attempts > 1 ? `${n.attempts} (retried)` : String(n.attempts)]);
  if (n.cached_from) rows.push(["Reused", `the outputs of execution ${n.cached_from} (cache hit: nothing ran)`]);
  if (n.phase) rows.push(["Now", n.phase]);
  if (n.reason) rows.push(["Reason", n.reason]);
  if (n.execution_id != null) rows.push(["Execution", `#${n.execution_id}`]);
  return (
    <div class="task-overview">
      {n.error ? <ErrorBox error={n.error} title="Error" /> : null}
      <Fields rows={rows} />
      <Params title="Inputs" values={n.inputs} />
      <ArtifactLinks title="Input artifacts" list={n.input_artifacts} />
      <Params title="Outputs" values={n.outputs} />
      <ArtifactLinks title="Output artifacts" list={n.output_artifacts} />
    </div>
  );
}

function RunArtifacts(props: { artifacts?: Artifact[]; error?: string }) {
  const [shown, setShown] = useState(20);
  if (props.error && !props.artifacts) return <ErrorBox error={props.error} title="Cannot list artifacts" />;
  if (!props.artifacts) return <Loading what="artifacts" />;
  if (!props.artifacts.length) return <p class="muted">This run has produced no artifacts yet.</p>;
  return (
    <div class="artifact-list">
      {props.artifacts.slice(0, shown).map((a) => (
        <div key={`${a.task}-${a.name}-${a.artifact_id}`}>
          <p class="muted">
            from <code>{a.task}</code>
          </p>
          <ArtifactView artifact={a} />
        </div>
      ))}
      {props.artifacts.length > shown ? (
        <button type="button" onClick={() => setShown((s) => s + 20)}>
          Show more ({props.artifacts.length - shown} left)
        </button>
      ) : null}
    </div>
  );
}

function RunFields(props: { run: Run; graph?: Graph }) {
  const r = props.run;
  const effective = props.graph?.parameters;
  const given = r.runtime_config?.parameters ?? {};
  return (
    <div class="run-fields">
      <Fields
        rows={[
          ["Run id", <code>{r.run_id}</code>],
          ["Pipeline", r.pipeline_name ?? "—"],
          [
            "Pipeline version",
            r.pipeline_version_reference ? (
              <a href={href(`/pipelines/details/${r.pipeline_version_reference.pipeline_id}/version/${r.pipeline_version_reference.pipeline_version_id}`)}>
                {r.pipeline_version_reference.pipeline_version_id}
              </a>
            ) : (
              "inline spec"
            ),
          ],
          ["Created", when(r.created_at)],
          ["Finished", when(r.finished_at)],
          ["Storage", r.storage_state],
          ["Description", r.description || "—"],
          ...(r.recurring_run_id ? [["Recurring run", r.recurring_run_id] as [string, string]] : []),
        ]}
      />
      {effective ? (
        <>
          <Params title="Parameters (as the run used them)" values={effective} />
          {Object.keys(effective).some((name) => !(name in given)) ? <p class="muted">Values not given when the run started are the pipeline's defaults.</p> : null}
        </>
      ) : (
        <Params title="Parameters" values={r.runtime_config?.parameters} />
      )}
      {props.graph?.outputs ? <Params title="Outputs" values={props.graph.outputs} /> : null}
    </div>
  );
}
