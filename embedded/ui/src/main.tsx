// The kfbox web UI: one page, hash routes, everything from this server.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { get, onTokenNeeded, routes, setToken, type LabStatus } from "./api";
import { useLoad } from "./hooks";
import { CopyText, Empty } from "./components/common";
import { useRoute } from "./router";
import { ArtifactPage } from "./pages/ArtifactPage";
import { Compare } from "./pages/Compare";
import { ExperimentDetails, ExperimentsPage } from "./pages/Experiments";
import { PipelineDetails, PipelinesPage } from "./pages/Pipelines";
import { RecurringPage } from "./pages/Recurring";
import { RunDetails } from "./pages/RunDetails";
import { RunsPage } from "./pages/Runs";
import "./app.css";

const NAV = [
  { path: "runs", label: "Runs" },
  { path: "experiments", label: "Experiments" },
  { path: "pipelines", label: "Pipelines" },
  { path: "recurringruns", label: "Recurring runs" },
];

function Page() {
  const { path, query } = useRoute();
  const [section, a, b, c, d] = path;
  switch (section ?? "runs") {
    case "runs":
      return a === "details" && b ? <RunDetails key={b} runId={b} task={query.get("task") ?? undefined} tab={query.get("tab") ?? undefined} /> : <RunsPage />;
    case "experiments":
      return a === "details" && b ? <ExperimentDetails key={b} experimentId={b} /> : <ExperimentsPage />;
    case "pipelines":
      return a === "details" && b ? <PipelineDetails key={b} pipelineId={b} versionId={c === "version" ? d : undefined} /> : <PipelinesPage />;
    case "recurringruns":
    case "recurringrun":
      return <RecurringPage />;
    case "compare":
      return <Compare runIds={(query.get("runlist") ?? "").split(",").filter(Boolean)} />;
    case "artifacts":
      return a ? <ArtifactPage key={a} artifactId={a} /> : <Empty title="No artifact chosen" />;
    default:
      return (
        <Empty title="No such page">
          <p>
            <code>#{path.join("/")}</code> is not a page of kfbox. <a href="#/runs">See the runs.</a>
          </p>
        </Empty>
      );
  }
}

function TokenDialog() {
  const [needed, setNeeded] = useState(false);
  useEffect(() => onTokenNeeded(() => setNeeded(true)), []);
  if (!needed) return null;
  return (
    <div class="token-dialog" role="dialog" aria-modal="true" aria-labelledby="token-title">
      <form
        class="card"
        onSubmit={(ev) => {
          ev.preventDefault();
          setToken(((ev.target as HTMLFormElement).elements.namedItem("token") as HTMLInputElement).value);
          location.reload();
        }}
      >
        <h2 id="token-title">This kfbox needs its token</h2>
        <p>
          It listens beyond this machine, so every request must carry the token that <code>kfbox up</code> printed (or the one given with{" "}
          <code>--token</code>).
        </p>
        <label>
          Token <input name="token" type="password" autoFocus autoComplete="off" />
        </label>
        <button type="submit" class="primary">
          Use it
        </button>
      </form>
    </div>
  );
}

/** The lab's state: starting (with the install's progress), ready (a link that opens the
 * welcome notebook), failed (why, and where the log is). Polled until it settles. */
function LabCard() {
  const lab = useLoad(() => get<LabStatus>(routes.lab), [], {
    everyMs: 1000,
    live: (s) => s.state === "starting",
  });
  const s = lab.data;
  if (!s || s.state === "off") return null;
  return (
    <section class={`lab lab-${s.state}`} aria-label="JupyterLab" aria-live="polite">
      <p class="lab-title">JupyterLab</p>
      {s.state === "starting" && (
        <>
          <p class="lab-detail">Starting… {s.detail}</p>
          {s.fraction !== undefined && <progress max={1} value={s.fraction} aria-label="JupyterLab install progress" />}
        </>
      )}
      {s.state === "ready" && s.url && (
        <a class="lab-open" href={s.url} target="_blank" rel="noopener">
          Open JupyterLab ↗
        </a>
      )}
      {s.state === "failed" && (
        <>
          <p class="lab-detail">Did not start: {s.error}</p>
          {s.log && (
            <p class="lab-detail">
              Log: <code>{s.log}</code>
            </p>
          )}
        </>
      )}
    </section>
  );
}

function App() {
  const { path } = useRoute();
  const current = path[0] === "recurringrun" ? "recurringruns" : (path[0] ?? "runs");
  const [menu, setMenu] = useState(false);
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>
        Skip to content
      </a>
      <div class="shell">
        <nav class={`sidebar${menu ? " open" : ""}`} aria-label="Sections">
          <div class="brand">
            <span class="logo" aria-hidden="true">▣</span> kfbox
            <button type="button" class="menu" aria-expanded={menu} aria-label="Menu" onClick={() => setMenu((m) => !m)}>
              ☰
            </button>
          </div>
          <ul>
            {NAV.map((n) => (
              <li key={n.path}>
                <a href={`#/${n.path}`} aria-current={current === n.path ? "page" : undefined} onClick={() => setMenu(false)}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
          <LabCard />
          <div class="endpoint">
            <p>Kubeflow Pipelines API</p>
            <CopyText text={`export KF_PIPELINES_ENDPOINT=${location.origin}`} label="the endpoint line" />
          </div>
        </nav>
        <main id="main" tabIndex={-1}>
          <Page />
        </main>
      </div>
      <TokenDialog />
    </>
  );
}

render(<App />, document.getElementById("app")!);
