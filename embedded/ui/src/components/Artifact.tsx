// Artifacts rendered by type: Metrics, ClassificationMetrics, SlicedClassificationMetrics,
// Markdown, HTML, Dataset previews, Model metadata; any artifact can be downloaded.
import MarkdownIt from "markdown-it";
import { useMemo } from "preact/hooks";
import { download, request, routes, type Artifact } from "../api";
import { number, value } from "../format";
import { useLoad } from "../hooks";
import { href } from "../router";
import { Chart, type Series } from "./Chart";
import { ErrorBox, Fields, Loading } from "./common";
import { preview, type Preview } from "../preview";

/** Metadata keys kfbox and the SDK add for themselves. */
const OWN_KEYS = new Set(["display_name", "store_session_info"]);

export function userMetadata(artifact: Artifact): [string, unknown][] {
  return Object.entries(artifact.metadata ?? {}).filter(([k]) => !OWN_KEYS.has(k));
}

export function shortType(type: string): string {
  return type.replace(/^system\./, "");
}

export function ArtifactView(props: { artifact: Artifact; lineageLink?: boolean }) {
  const a = props.artifact;
  const type = shortType(a.type);
  const fileName = a.uri.split("/").filter(Boolean).pop() ?? `artifact-${a.artifact_id}`;
  return (
    <section class="artifact" data-artifact-type={type} aria-label={`${type} artifact ${a.name ?? a.display_name}`}>
      <header class="artifact-header">
        <h3>
          {a.name ?? a.display_name} <span class="type-tag">{type}</span>
        </h3>
        <div class="actions">
          {props.lineageLink !== false ? <a href={href(`/artifacts/${a.artifact_id}`)}>Lineage</a> : null}
          <button type="button" onClick={() => download(`${routes.artifactContent(a.artifact_id)}?download=true`, fileName)}>
            Download
          </button>
        </div>
      </header>
      <p class="uri" title={a.uri}>
        {a.uri}
      </p>
      <ArtifactBody artifact={a} type={type} />
    </section>
  );
}

function ArtifactBody(props: { artifact: Artifact; type: string }) {
  const a = props.artifact;
  switch (props.type) {
    case "Metrics":
      return <MetricsTable artifact={a} />;
    case "ClassificationMetrics":
      return <Classification metadata={a.metadata} />;
    case "SlicedClassificationMetrics":
      return <Sliced metadata={a.metadata} />;
    case "Markdown":
      return <MarkdownView artifact={a} />;
    case "HTML":
      return <HtmlView artifact={a} />;
    case "Dataset":
      return (
        <>
          <MetadataTable artifact={a} />
          <DatasetPreview artifact={a} />
        </>
      );
    default:
      return <MetadataTable artifact={a} />;
  }
}

export function MetadataTable(props: { artifact: Artifact }) {
  const rows = userMetadata(props.artifact);
  if (!rows.length) return <p class="muted">No metadata.</p>;
  return <Fields rows={rows.map(([k, v]) => [k, <code>{value(v)}</code>])} />;
}

function MetricsTable(props: { artifact: Artifact }) {
  const rows = userMetadata(props.artifact);
  if (!rows.length) return <p class="muted">No metrics were logged.</p>;
  return (
    <table class="metrics">
      <thead>
        <tr>
          <th scope="col">Metric</th>
          <th scope="col">Value</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([k, v]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td class="num">{typeof v === "number" ? number(v) : value(v)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

type ConfusionMatrix = { annotationSpecs?: { displayName?: string }[]; rows?: { row?: number[] }[] };
type Confidence = { confidenceThreshold?: number; falsePositiveRate?: number; recall?: number };

function Classification(props: { metadata: Record<string, unknown> }) {
  const matrix = props.metadata.confusionMatrix as ConfusionMatrix | undefined;
  const confidence = props.metadata.confidenceMetrics as Confidence[] | undefined;
  if (!matrix && !confidence?.length)
    return <p class="muted">No confusion matrix or ROC readings were logged.</p>;
  return (
    <div class="charts">
      {matrix ? <Confusion matrix={matrix} /> : null}
      {confidence?.length ? <Roc series={[{ label: "ROC", readings: confidence }]} /> : null}
    </div>
  );
}

/** One slice as the SDK's SlicedClassificationMetrics writes it. */
type Slice = {
  slice?: string;
  sliceClassificationMetrics?: { confidenceMetrics?: Confidence[]; confusionMatrix?: ConfusionMatrix };
};

function Sliced(props: { metadata: Record<string, unknown> }) {
  const slices = (props.metadata.evaluationSlices as Slice[] | undefined) ?? [];
  if (!slices.length) return <p class="muted">No slices were logged.</p>;
  const label = (s: Slice, i: number) => s.slice ?? `slice ${i + 1}`;
  const curves = slices
    .map((s, i) => ({ label: label(s, i), readings: s.sliceClassificationMetrics?.confidenceMetrics ?? [] }))
    .filter((s) => s.readings.length);
  return (
    <div class="charts">
      {curves.length ? <Roc series={curves} title="ROC curve per slice" /> : null}
      {slices.map((s, i) => {
        const matrix = s.sliceClassificationMetrics?.confusionMatrix;
        return matrix ? (
          <div key={i}>
            <h4>{label(s, i)}</h4>
            <Confusion matrix={matrix} />
          </div>
        ) : null;
      })}
    </div>
  );
}

export function Roc(props: { series: { label: string; readings: Confidence[] }[]; title?: string }) {
  const series: Series[] = useMemo(
    () =>
      props.series.map((s) => {
        const points = s.readings
          .filter((r) => typeof r.falsePositiveRate === "number" && typeof r.recall === "number")
          .map((r) => [r.falsePositiveRate!, r.recall!] as const)
          .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        return { label: s.label, x: points.map((p) => p[0]), y: points.map((p) => p[1]) };
      }),
    [props.series],
  );
  return (
    <figure class="roc" data-roc-series={series.length}>
      <Chart
        title={props.title ?? "ROC curve"}
        series={series}
        xLabel="False positive rate"
        yLabel="True positive rate"
        xRange={[0, 1]}
        yRange={[0, 1]}
        diagonal
        width={360}
        height={300}
      />
    </figure>
  );
}

export function Confusion(props: { matrix: ConfusionMatrix }) {
  const labels = (props.matrix.annotationSpecs ?? []).map((s, i) => s.displayName ?? `class ${i}`);
  const rows = (props.matrix.rows ?? []).map((r) => r.row ?? []);
  const max = Math.max(1, ...rows.flat());
  return (
    <figure class="confusion">
      <table class="confusion-matrix" aria-label="Confusion matrix: rows are true classes, columns predicted">
        <thead>
          <tr>
            <th scope="col" class="corner">
              true \ predicted
            </th>
            {labels.map((l) => (
              <th scope="col" key={l}>
                {l}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, i) => (
            <tr key={i}>
              <th scope="row">{labels[i] ?? `class ${i}`}</th>
              {row.map((v, j) => {
                const t = v / max;
                return (
                  <td
                    key={j}
                    class={`cell${i === j ? " diagonal" : ""}`}
                    style={{ background: `rgba(37, 99, 235, ${(0.08 + 0.92 * t).toFixed(3)})`, color: t > 0.55 ? "white" : "inherit" }}
                  >
                    {v}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
      <figcaption>Confusion matrix (rows: true class; columns: predicted; darker: more)</figcaption>
    </figure>
  );
}

const md = new MarkdownIt({ html: false, linkify: true, typographer: false });
// Links open outside the UI and tell the target nothing about us.
md.renderer.rules.link_open = (tokens, idx, options, _env, self) => {
  tokens[idx].attrSet("target", "_blank");
  tokens[idx].attrSet("rel", "noopener noreferrer");
  return self.renderToken(tokens, idx, options);
};

const TEXT_LIMIT = 2 << 20;

function useText(artifact: Artifact) {
  return useLoad(async () => {
    const response = await request(routes.artifactContent(artifact.artifact_id, TEXT_LIMIT));
    return response.text();
  }, [artifact.artifact_id]);
}

function MarkdownView(props: { artifact: Artifact }) {
  const text = useText(props.artifact);
  if (text.error) return <ErrorBox error={text.error} title="Cannot read the Markdown" />;
  if (text.data === undefined) return <Loading what="Markdown" />;
  // markdown-it with html disabled escapes every tag, and refuses javascript: links.
  return <div class="markdown" dangerouslySetInnerHTML={{ __html: md.render(text.data) }} />;
}

function HtmlView(props: { artifact: Artifact }) {
  const text = useText(props.artifact);
  if (text.error) return <ErrorBox error={text.error} title="Cannot read the HTML" />;
  if (text.data === undefined) return <Loading what="HTML" />;
  // An empty sandbox: no scripts, no forms, no access to this page or its origin.
  return <iframe class="html-view" sandbox="" srcdoc={text.data} title={`HTML artifact ${props.artifact.name ?? ""}`} />;
}

function DatasetPreview(props: { artifact: Artifact }) {
  const loaded = useLoad<Preview>(() => preview(props.artifact), [props.artifact.artifact_id]);
  if (loaded.error) return <ErrorBox error={loaded.error} title="Cannot preview the dataset" />;
  const p = loaded.data;
  if (!p) return <Loading what="a preview" />;
  if (p.kind === "none") return <p class="muted">{p.note}</p>;
  if (p.kind === "text")
    return (
      <>
        <p class="muted">{p.note}</p>
        <pre class="text-preview">{p.text}</pre>
      </>
    );
  return (
    <div class="preview">
      <p class="muted">{p.note}</p>
      <div class="table-scroll">
        <table class="data">
          <thead>
            <tr>
              {p.columns.map((c) => (
                <th scope="col" key={c}>
                  {c}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {p.rows.map((r, i) => (
              <tr key={i}>
                {r.map((v, j) => (
                  <td key={j}>{v}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
