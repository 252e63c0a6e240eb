// Pipelines and their versions: upload, graph preview before running, and the run form.
import { useState } from "preact/hooks";
import {
  get,
  listQuery,
  request,
  routes,
  type Graph,
  type Page,
  type Pipeline,
  type PipelineVersion,
} from "../api";
import { Dag } from "../components/Dag";
import { RunForm } from "../components/RunForm";
import { Pager, SearchBox, usePages } from "../components/Pager";
import { CopyText, Empty, ErrorBox, Loading } from "../components/common";
import { when } from "../format";
import { useLoad } from "../hooks";
import { href, navigate } from "../router";

export function PipelinesPage() {
  const pages = usePages();
  const [search, setSearch] = useState("");
  const query = listQuery({
    page_size: 20,
    page_token: pages.token,
    sort_by: "created_at desc",
    predicates: search.trim() ? [{ key: "display_name", operation: "IS_SUBSTRING", string_value: search.trim() }] : [],
  });
  const pipelines = useLoad(() => get<Page<"pipelines", Pipeline>>(routes.pipelines + query), [query]);
  const list = pipelines.data?.pipelines ?? [];
  return (
    <>
      <div class="page-header">
        <h1>Pipelines</h1>
      </div>
      <Upload onDone={(p) => navigate(`/pipelines/details/${p.pipeline_id}`)} />
      <div class="toolbar" role="search">
        <SearchBox value={search} onChange={setSearch} label="Filter pipelines by name" pages={pages} />
      </div>
      <ErrorBox error={pipelines.error} title="Cannot list pipelines" />
      {pipelines.loading && !pipelines.data ? (
        <Loading what="pipelines" />
      ) : !list.length && !search && pages.depth === 0 ? (
        <Empty title="No pipelines yet">
          <p>Upload a compiled pipeline (YAML or JSON) above, or from Python:</p>
          <CopyText text={`kfp.Client(host="${location.origin}").upload_pipeline("pipeline.yaml", pipeline_name="my-pipeline")`} label="the Python line" />
        </Empty>
      ) : (
        <>
          <table class="list">
            <thead>
              <tr>
                <th scope="col">Pipeline</th>
                <th scope="col">Description</th>
                <th scope="col">Uploaded</th>
              </tr>
            </thead>
            <tbody>
              {list.map((p) => (
                <tr key={p.pipeline_id} data-pipeline-id={p.pipeline_id}>
                  <td>
                    <a href={href(`/pipelines/details/${p.pipeline_id}`)}>{p.display_name}</a>
                  </td>
                  <td>{p.description || <span class="muted">—</span>}</td>
                  <td>{when(p.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {!list.length ? <p class="muted">No pipelines match.</p> : null}
          <Pager pages={pages} next={pipelines.data?.next_page_token} label="Pages of pipelines">
            <span class="muted">{(pipelines.data?.total_size ?? 0).toLocaleString()} pipelines</span>
          </Pager>
        </>
      )}
    </>
  );
}

function Upload(props: { onDone: (p: Pipeline) => void }) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (ev: Event) => {
    ev.preventDefault();
    const form = ev.target as HTMLFormElement;
    const file = (form.elements.namedItem("file") as HTMLInputElement).files?.[0];
    const name = (form.elements.namedItem("name") as HTMLInputElement).value.trim();
    if (!file) return setError("Choose a compiled pipeline file (.yaml or .json) first.");
    setBusy(true);
    setError(undefined);
    try {
      const body = new FormData();
      body.append("uploadfile", file, file.name);
      // Without a name the server takes the pipeline's own (`pipelineInfo.name`), as Kubeflow's UI does.
      const q = name ? `?${new URLSearchParams({ name })}` : "";
      const response = await request(`${routes.pipelines}/upload${q}`, { method: "POST", body });
      props.onDone((await response.json()) as Pipeline);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="upload card" onSubmit={submit} aria-label="Upload a pipeline">
      <h2>Upload a pipeline</h2>
      <div class="row">
        <label>
          File <input type="file" name="file" accept=".yaml,.yml,.json" />
        </label>
        <label>
          Name <input type="text" name="name" placeholder="the pipeline's own name" />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Uploading…" : "Upload"}
        </button>
      </div>
      <ErrorBox error={error} title="Upload refused" />
    </form>
  );
}

export function PipelineDetails(props: { pipelineId: string; versionId?: string }) {
  const pipeline = useLoad(() => get<Pipeline>(routes.pipeline(props.pipelineId)), [props.pipelineId]);
  const versions = useLoad(
    () => get<Page<"pipeline_versions", PipelineVersion>>(routes.versions(props.pipelineId) + listQuery({ page_size: 100, sort_by: "created_at desc" })),
    [props.pipelineId],
  );
  if (pipeline.error) return <ErrorBox error={pipeline.error} title={`Cannot show pipeline ${props.pipelineId}`} />;
  if (!pipeline.data || !versions.data) return <Loading what="the pipeline" />;
  const list = versions.data.pipeline_versions ?? [];
  const version = list.find((v) => v.pipeline_version_id === props.versionId) ?? list[0];
  return (
    <div class="pipeline-details">
      <div class="page-header">
        <div>
          <p class="crumbs">
            <a href={href("/pipelines")}>Pipelines</a>
          </p>
          <h1>{pipeline.data.display_name}</h1>
          {pipeline.data.description ? <p class="muted">{pipeline.data.description}</p> : null}
        </div>
        {list.length ? (
          <label>
            Version{" "}
            <select
              value={version?.pipeline_version_id}
              onChange={(e) => navigate(`/pipelines/details/${props.pipelineId}/version/${(e.target as HTMLSelectElement).value}`)}
            >
              {list.map((v) => (
                <option key={v.pipeline_version_id} value={v.pipeline_version_id}>
                  {v.display_name} ({when(v.created_at)})
                </option>
              ))}
            </select>
          </label>
        ) : null}
      </div>
      {version ? <VersionView key={version.pipeline_version_id} version={version} /> : <p class="muted">This pipeline has no versions.</p>}
    </div>
  );
}

function VersionView(props: { version: PipelineVersion }) {
  const v = props.version;
  const graph = useLoad(() => get<Graph>(routes.versionGraph(v.pipeline_id, v.pipeline_version_id)), [v.pipeline_version_id]);
  return (
    <div class="version-view">
      <section class="preview-graph" aria-label="Graph preview">
        <h2>Graph</h2>
        <ErrorBox error={graph.error} title="Cannot draw the graph" />
        {graph.data ? (
          <Dag
            label="Pipeline preview"
            items={graph.data.nodes.map((n) => ({
              id: n.id,
              parent: n.parent,
              label: n.name,
              detail: n.kind === "container" ? undefined : n.kind === "dag" ? "pipeline" : n.kind,
              kind: n.kind,
              state: "PENDING",
              group: ["dag", "condition", "loop"].includes(n.kind),
              title: `${n.id} (${n.component})${n.condition ? `\nif ${n.condition}` : ""}`,
            }))}
            edges={graph.data.edges}
          />
        ) : (
          <Loading what="the graph" />
        )}
      </section>
      <RunForm
        spec={v.pipeline_spec}
        source={{ pipeline_version_reference: { pipeline_id: v.pipeline_id, pipeline_version_id: v.pipeline_version_id } }}
        name={`${v.display_name} ${new Date().toLocaleString()}`}
      />
    </div>
  );
}
