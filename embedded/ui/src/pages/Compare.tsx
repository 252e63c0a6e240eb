// Runs side by side: parameters and metrics in one table each, differences marked, and charts
// of each metric across the runs and of their ROC curves.
import { get, routes, type Artifact, type Run } from "../api";
import { Roc, shortType, userMetadata } from "../components/Artifact";
import { Chart } from "../components/Chart";
import { StateBadge } from "../components/State";
import { Empty, ErrorBox, Loading } from "../components/common";
import { number, value } from "../format";
import { useLoad } from "../hooks";
import { href } from "../router";

type Loaded = { run: Run; artifacts: Artifact[] };

export function Compare(props: { runIds: string[] }) {
  const loaded = useLoad(
    () =>
      Promise.all(
        props.runIds.map(async (id) => ({
          run: await get<Run>(routes.run(id)),
          artifacts: (await get<{ artifacts: Artifact[] }>(routes.runArtifacts(id))).artifacts,
        })),
      ),
    [props.runIds.join(",")],
  );
  if (props.runIds.length < 2)
    return (
      <Empty title="Pick runs to compare">
        <p>
          Tick two or more runs in the <a href={href("/runs")}>runs list</a>, then press Compare.
        </p>
      </Empty>
    );
  if (loaded.error) return <ErrorBox error={loaded.error} title="Cannot load the runs" />;
  if (!loaded.data) return <Loading what="the runs" />;
  const runs = loaded.data;
  return (
    <div class="compare">
      <div class="page-header">
        <h1>Compare {runs.length} runs</h1>
      </div>
      <table class="list compare-runs">
        <thead>
          <tr>
            <th scope="col">Run</th>
            <th scope="col">State</th>
            <th scope="col">Pipeline</th>
          </tr>
        </thead>
        <tbody>
          {runs.map(({ run }) => (
            <tr key={run.run_id}>
              <td>
                <a href={href(`/runs/details/${run.run_id}`)}>{run.display_name}</a>
              </td>
              <td>
                <StateBadge state={run.state} />
              </td>
              <td>{run.pipeline_name ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Parameters</h2>
      <SideBySide
        runs={runs}
        rows={rowsOf(runs, ({ run }) => Object.entries(run.runtime_config?.parameters ?? {}))}
        empty="None of these runs was given parameters."
        label="Parameters"
      />
      <Metrics runs={runs} />
    </div>
  );
}

/** Row keys in first-seen order, each with its value per run. */
function rowsOf(runs: Loaded[], entries: (r: Loaded) => [string, unknown][]): [string, unknown[]][] {
  const keys: string[] = [];
  const values = runs.map((r) => new Map(entries(r)));
  for (const v of values) for (const k of v.keys()) if (!keys.includes(k)) keys.push(k);
  return keys.map((k) => [k, values.map((v) => v.get(k))]);
}

function SideBySide(props: { runs: Loaded[]; rows: [string, unknown[]][]; empty: string; label: string }) {
  if (!props.rows.length) return <p class="muted">{props.empty}</p>;
  return (
    <div class="table-scroll">
      <table class="list side-by-side" aria-label={props.label}>
        <thead>
          <tr>
            <th scope="col">{props.label === "Metrics" ? "Metric" : "Parameter"}</th>
            {props.runs.map(({ run }) => (
              <th scope="col" key={run.run_id}>
                {run.display_name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map(([k, vs]) => {
            const differs = new Set(vs.map((v) => value(v))).size > 1;
            return (
              <tr key={k} class={differs ? "differs" : ""} data-differs={differs}>
                <th scope="row">
                  {k}
                  {differs ? <span class="differs-tag"> differs</span> : null}
                </th>
                {vs.map((v, i) => (
                  <td key={i} class="num">
                    {v === undefined ? "—" : typeof v === "number" ? number(v) : value(v)}
                  </td>
                ))}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** A run's name short enough for an axis tick; the legend has it whole. */
function shortName(name: string): string {
  return name.length > 14 ? `${name.slice(0, 13)}…` : name;
}

function Metrics(props: { runs: Loaded[] }) {
  const { runs } = props;
  // A metric is named by the task and output that logged it: `task/output: key`.
  const rows = rowsOf(runs, ({ artifacts }) =>
    artifacts
      .filter((a) => shortType(a.type) === "Metrics")
      .flatMap((a) => userMetadata(a).map(([k, v]) => [`${a.task}/${a.name}: ${k}`, v] as [string, unknown])),
  );
  const numeric = rows.filter(([, vs]) => vs.some((v) => typeof v === "number"));
  const rocs = runs.flatMap(({ run, artifacts }) =>
    artifacts
      .filter((a) => shortType(a.type) === "ClassificationMetrics" && Array.isArray(a.metadata.confidenceMetrics))
      .map((a) => ({
        label: `${run.display_name} · ${a.task}/${a.name}`,
        readings: a.metadata.confidenceMetrics as { falsePositiveRate?: number; recall?: number }[],
      })),
  );
  return (
    <>
      <h2>Metrics</h2>
      <SideBySide runs={runs} rows={rows} empty="None of these runs logged Metrics artifacts." label="Metrics" />
      {numeric.length ? (
        <div class="charts">
          {numeric.slice(0, 12).map(([k, vs]) => {
            const at = k.lastIndexOf(": ");
            const metric = k.slice(at + 2);
            // One series per run, each its own colour, named in the legend.
            return (
              <Chart
                key={k}
                title={`${metric} (${k.slice(0, at)})`}
                points
                staticLegend
                xLabel="Run"
                yLabel={metric}
                xValues={(i) => shortName(runs[Math.round(i)]?.run.display_name ?? "")}
                xRange={[-0.5, runs.length - 0.5]}
                xSplits={runs.map((_, i) => i)}
                series={runs.map(({ run }, i) => {
                  const v = vs[i];
                  return { label: run.display_name, x: typeof v === "number" ? [i] : [], y: typeof v === "number" ? [v] : [] };
                })}
                width={340}
                height={260}
              />
            );
          })}
        </div>
      ) : null}
      {rocs.length ? (
        <>
          <h2>ROC curves</h2>
          <Roc series={rocs} title="ROC curves of the runs" />
        </>
      ) : null}
    </>
  );
}
