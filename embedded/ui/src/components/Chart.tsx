// Line and point charts by uPlot (small, fast, canvas).
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { useEffect, useRef } from "preact/hooks";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

export type Series = { label: string; x: number[]; y: number[] };

/**
 * Curves on shared axes. Series may have different x values: they are merged onto one sorted
 * x axis, each series null where it has no point.
 */
export function Chart(props: {
  series: Series[];
  xLabel: string;
  yLabel: string;
  title: string;
  points?: boolean;
  /** A legend of the series' names only (no values under the cursor): one series per run. */
  staticLegend?: boolean;
  /** Draw the diagonal y = x (ROC curves). */
  diagonal?: boolean;
  xRange?: [number, number];
  yRange?: [number, number];
  xValues?: (v: number) => string;
  /** Where the x axis has ticks (categories: one per run). */
  xSplits?: number[];
  width?: number;
  height?: number;
}) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!host.current) return;
    const xs = [...new Set(props.series.flatMap((s) => s.x))].sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const columns = props.series.map((s) => {
      const col: (number | null)[] = xs.map(() => null);
      s.x.forEach((x, i) => (col[index.get(x)!] = s.y[i]));
      return col;
    });
    const data: uPlot.AlignedData = [xs, ...columns];
    const series: uPlot.Series[] = [
      { label: props.xLabel, value: (_u, v) => (v == null ? "—" : props.xValues ? props.xValues(v) : v.toPrecision(3)) },
      ...props.series.map((s, i) => ({
        label: s.label,
        stroke: COLORS[i % COLORS.length],
        width: 2,
        spanGaps: true,
        points: { show: props.points ?? false, size: 8 },
        paths: props.points ? () => null : undefined,
      })),
    ];
    const plugins: uPlot.Plugin[] = [];
    if (props.diagonal) {
      plugins.push({
        hooks: {
          draw: (u) => {
            const ctx = u.ctx;
            ctx.save();
            ctx.strokeStyle = "#9ca3af";
            ctx.setLineDash([4, 4]);
            ctx.beginPath();
            ctx.moveTo(u.valToPos(0, "x", true), u.valToPos(0, "y", true));
            ctx.lineTo(u.valToPos(1, "x", true), u.valToPos(1, "y", true));
            ctx.stroke();
            ctx.restore();
          },
        },
      });
    }
    const plot = new uPlot(
      {
        title: props.title,
        width: props.width ?? 420,
        height: props.height ?? 300,
        series,
        plugins,
        scales: {
          x: { time: false, range: props.xRange },
          y: { range: props.yRange },
        },
        axes: [
          {
            label: props.xLabel,
            values: props.xValues ? (_u, vals) => vals.map((v) => props.xValues!(v)) : undefined,
            splits: props.xSplits ? () => props.xSplits! : undefined,
          },
          { label: props.yLabel },
        ],
        legend: { live: !props.staticLegend },
      },
      data,
      host.current,
    );
    return () => plot.destroy();
  }, [props.series, props.title]);
  return <div class="chart" ref={host} role="img" aria-label={`${props.title}: chart of ${props.yLabel} by ${props.xLabel}`} />;
}
