// uPlot charts sized to their container: lines (training curves, feedback volume) and bars (per-user
// accuracy). The data comes already shaped by lib/charts.ts.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { Columns } from '../lib/charts.ts';

export interface SeriesSpec {
  label: string;
  color: string;
  bars?: boolean;
}

const points = (cols: Columns): number => cols.slice(1).reduce((n, s) => n + s.filter((v) => v !== null).length, 0);

function axisColor(): string {
  return matchMedia('(prefers-color-scheme: dark)').matches ? '#c9d1d9' : '#444';
}

export function Chart(props: {
  title: string;
  columns: Columns;
  series: SeriesSpec[];
  xLabel: string;
  yLabel: string;
  /** x is seconds since the epoch. */
  time?: boolean;
  yRange?: [number, number];
  /** Bar charts: category labels for x = 0..n-1. */
  categories?: string[];
  height?: number;
  testId?: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = `${props.series.map((s) => s.label).join('|')}|${props.categories?.join('|') ?? ''}|${props.time ? 't' : ''}`;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = Math.max(240, el.clientWidth);
    const color = axisColor();
    const bars = uPlot.paths.bars!({ size: [0.6, 60] });
    const cats = props.categories;
    const opts: uPlot.Options = {
      title: props.title,
      width,
      height: props.height ?? 220,
      scales: {
        x: { time: !!props.time, ...(cats ? { range: () => [-0.5, Math.max(0.5, cats.length - 0.5)] as [number, number] } : {}) },
        y: props.yRange ? { range: () => props.yRange! } : {},
      },
      axes: [
        {
          label: props.xLabel,
          stroke: color,
          ...(cats ? { splits: () => cats.map((_, i) => i), values: (_u: uPlot, vals: number[]) => vals.map((v) => cats[v] ?? '') } : {}),
        },
        { label: props.yLabel, stroke: color },
      ],
      series: [
        { label: props.xLabel },
        ...props.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          ...(s.bars ? { fill: s.color, paths: bars, points: { show: false } } : { points: { show: props.columns[0].length < 40 } }),
          spanGaps: true,
        })),
      ],
      legend: { show: true },
    };
    const u = new uPlot(opts, props.columns as uPlot.AlignedData, el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(240, el.clientWidth), height: props.height ?? 220 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Rebuilt only when the series change; data updates go through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(props.columns as uPlot.AlignedData);
  }, [props.columns]);

  const n = points(props.columns);
  return (
    <figure class="chart" data-testid={props.testId} data-points={n}>
      <div ref={box} class="chart-canvas" role="img" aria-label={`${props.title}: ${n} data points`} />
      {n === 0 && <figcaption class="muted">No data yet.</figcaption>}
    </figure>
  );
}
