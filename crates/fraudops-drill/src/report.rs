//! The report a drill leaves behind: `series.csv` (one row per sample), `replicas.csv` (CPU per replica),
//! `chart.svg` (the timeline), `summary.md` / `summary.json` (what happened, the checks, the notification
//! payload). Written also when the drill fails or is interrupted, with what was measured until then.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use crate::cluster::ScalingEvent;
use crate::control::Notification;
use crate::error::DrillError;
use crate::monitoring::AlertState;

/// One sample of the timeline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sample {
    /// Seconds since the attack started.
    pub t_seconds: f64,
    /// The attack's target rate, tx/s.
    pub target_tps: f64,
    /// What the attack got acknowledged by the broker, tx/s.
    pub achieved_tps: f64,
    /// Predictions answered 2xx through the load balancer, tx/s (what the API actually did).
    pub scored_tps: f64,
    /// 5xx (including the balancer's 503 with no ready replica), per second.
    pub errors_per_s: f64,
    /// 95th percentile latency through the balancer in this sample, ms.
    pub p95_ms: Option<f64>,
    /// Pods not terminating (the HPA's current replicas).
    pub replicas_current: u32,
    /// The HPA's desired replicas.
    pub replicas_desired: u32,
    /// Ready pods (in the load balancer).
    pub replicas_ready: u32,
    /// The busiest replica's CPU over this sample, fraction of its limit (from its cgroup).
    pub cpu_ratio_max: Option<f64>,
    /// `fraudops:pod_cpu_usage_ratio:max` as Prometheus records it (2 m rate: what the alert reads).
    pub rule_cpu_ratio_max: Option<f64>,
    /// The stream worker's `kafka_queue_length` (events waiting).
    pub queue_length: Option<f64>,
    /// `AdminNotification_MaxScaleHighCPU` in Prometheus.
    pub alert_state: AlertState,
    /// Per replica: (pod, CPU fraction of its limit over this sample, ready).
    #[serde(skip)]
    pub per_pod: Vec<(String, f64, bool)>,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(String::new, |v| format!("{v:.digits$}"))
}

/// `series.csv`.
pub fn series_csv(samples: &[Sample]) -> String {
    let mut out = String::from(
        "t_seconds,target_tps,achieved_tps,p95_ms,replicas_current,replicas_desired,cpu_ratio_max,alert_state,\
         scored_tps,errors_per_s,replicas_ready,rule_cpu_ratio_max,queue_length\n",
    );
    for s in samples {
        let _ = writeln!(
            out,
            "{:.1},{:.0},{:.1},{},{},{},{},{},{:.1},{:.1},{},{},{}",
            s.t_seconds,
            s.target_tps,
            s.achieved_tps,
            opt(s.p95_ms, 2),
            s.replicas_current,
            s.replicas_desired,
            opt(s.cpu_ratio_max, 3),
            s.alert_state.as_str(),
            s.scored_tps,
            s.errors_per_s,
            s.replicas_ready,
            opt(s.rule_cpu_ratio_max, 3),
            opt(s.queue_length, 0),
        );
    }
    out
}

/// `replicas.csv`: one row per replica per sample.
pub fn replicas_csv(samples: &[Sample]) -> String {
    let mut out = String::from("t_seconds,pod,cpu_ratio,ready\n");
    for s in samples {
        for (pod, ratio, ready) in &s.per_pod {
            let _ = writeln!(out, "{:.1},{pod},{ratio:.3},{ready}", s.t_seconds);
        }
    }
    out
}

/// A marker on the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Mark {
    /// Seconds since the attack started.
    pub t_seconds: f64,
    /// What happened.
    pub label: String,
}

/// Everything the chart shows.
pub struct ChartInput<'a> {
    /// Title line.
    pub title: &'a str,
    /// The samples.
    pub samples: &'a [Sample],
    /// Scaling events (t filled in).
    pub events: &'a [ScalingEvent],
    /// Other marks (notification received, ...).
    pub marks: &'a [Mark],
    /// The HPA's CPU target as a fraction of the limit (request × target% / limit).
    pub hpa_target_of_limit: f64,
    /// The HPA's maximum.
    pub max_replicas: u32,
}

fn chart_err(e: impl std::fmt::Display) -> DrillError {
    DrillError::Chart(e.to_string())
}

/// Spans of consecutive samples in `state`: (start, end).
fn spans(samples: &[Sample], state: AlertState) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut start: Option<f64> = None;
    for (i, s) in samples.iter().enumerate() {
        let next_t = samples.get(i + 1).map_or(s.t_seconds, |n| n.t_seconds);
        match (s.alert_state == state, start) {
            (true, None) => start = Some(s.t_seconds),
            (false, Some(a)) => {
                out.push((a, s.t_seconds));
                start = None;
            }
            _ => {}
        }
        if i + 1 == samples.len()
            && let Some(a) = start
        {
            out.push((a, next_t));
        }
    }
    out
}

/// Draws `chart.svg`: four panels on one time axis — load (target, achieved, scored), p95 latency, CPU
/// per replica against its limit (the 80% alert threshold, the HPA target), and replicas (current,
/// desired, ready, the maximum) — with the admin alert's pending and firing periods shaded in every panel
/// and the scaling events and the notification marked.
pub fn draw_chart(path: &Path, input: &ChartInput<'_>) -> Result<(), DrillError> {
    let samples = input.samples;
    let t_max = samples.last().map_or(1.0, |s| s.t_seconds).max(1.0);
    let minutes = t_max > 600.0;
    let (x_scale, x_desc) = if minutes {
        (60.0, "minutes since the attack started")
    } else {
        (1.0, "seconds since the attack started")
    };
    let x = |t: f64| t / x_scale;
    let x_max = x(t_max);

    let root = SVGBackend::new(path, (1400, 1300)).into_drawing_area();
    root.fill(&WHITE).map_err(chart_err)?;
    let (top, body) = root.split_vertically(50);
    top.draw_text(
        input.title,
        &("sans-serif", 22).into_text_style(&top),
        (20, 15),
    )
    .map_err(chart_err)?;
    let panels = body.split_evenly((4, 1));

    let pending = spans(samples, AlertState::Pending);
    let firing = spans(samples, AlertState::Firing);
    let amber = RGBColor(255, 193, 7);
    let red = RGBColor(220, 53, 69);
    let blue = RGBColor(13, 110, 253);
    let green = RGBColor(25, 135, 84);
    let grey = RGBColor(108, 117, 125);
    let purple = RGBColor(111, 66, 193);

    // Every panel: the time axis, the admin alert's pending and firing periods shaded, the marks drawn.
    let shades = [(&pending, amber.mix(0.25)), (&firing, red.mix(0.2))];
    macro_rules! panel {
        ($area:expr, $caption:expr, $y_max:expr, $y_desc:expr) => {{
            let mut c = ChartBuilder::on($area)
                .margin(12)
                .caption($caption, ("sans-serif", 16))
                .x_label_area_size(28)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..x_max, 0.0..$y_max)
                .map_err(chart_err)?;
            c.configure_mesh()
                .x_desc(x_desc)
                .y_desc($y_desc)
                .draw()
                .map_err(chart_err)?;
            for (spans, color) in &shades {
                for (a, b) in spans.iter() {
                    c.draw_series(std::iter::once(Rectangle::new(
                        [(x(*a), 0.0), (x(*b), $y_max)],
                        color.filled(),
                    )))
                    .map_err(chart_err)?;
                }
            }
            for m in input.marks {
                c.draw_series(std::iter::once(PathElement::new(
                    vec![(x(m.t_seconds), 0.0), (x(m.t_seconds), $y_max)],
                    red.stroke_width(2),
                )))
                .map_err(chart_err)?;
            }
            c
        }};
    }

    // 1. Load.
    let y_max = samples
        .iter()
        .map(|s| s.target_tps.max(s.achieved_tps).max(s.scored_tps))
        .fold(10.0, f64::max)
        * 1.15;
    let mut c = panel!(
        &panels[0],
        "load: attack target, produced to Kafka, scored by the API (tx/s)",
        y_max,
        "tx/s"
    );
    for (name, color, f) in [
        (
            "target",
            grey,
            (|s: &Sample| s.target_tps) as fn(&Sample) -> f64,
        ),
        ("achieved (produced)", blue, |s: &Sample| s.achieved_tps),
        ("scored (API 2xx)", green, |s: &Sample| s.scored_tps),
    ] {
        c.draw_series(LineSeries::new(
            samples.iter().map(|s| (x(s.t_seconds), f(s))),
            color.stroke_width(2),
        ))
        .map_err(chart_err)?
        .label(name)
        .legend(legend_line(color.stroke_width(2)));
    }
    series_labels(&mut c, SeriesLabelPosition::UpperLeft)?;

    // 2. Latency.
    let p95_max = samples.iter().filter_map(|s| s.p95_ms).fold(10.0, f64::max) * 1.15;
    let mut c = panel!(
        &panels[1],
        "p95 latency through the load balancer (ms)",
        p95_max,
        "ms"
    );
    c.draw_series(LineSeries::new(
        samples
            .iter()
            .filter_map(|s| s.p95_ms.map(|p| (x(s.t_seconds), p))),
        purple.stroke_width(2),
    ))
    .map_err(chart_err)?;

    // 3. CPU per replica.
    let cpu_max = samples
        .iter()
        .flat_map(|s| s.per_pod.iter().map(|p| p.1))
        .fold(1.1_f64, f64::max)
        .min(2.0)
        * 1.05;
    let mut c = panel!(
        &panels[2],
        "CPU per replica, fraction of its limit (thin: each replica; thick: Prometheus' 2m-rate max the alert reads)",
        cpu_max,
        "CPU / limit"
    );
    let mut pods: Vec<String> = samples
        .iter()
        .flat_map(|s| s.per_pod.iter().map(|p| p.0.clone()))
        .collect();
    pods.sort();
    pods.dedup();
    for (i, pod) in pods.iter().enumerate() {
        let color = Palette99::pick(i).mix(0.8);
        c.draw_series(LineSeries::new(
            samples.iter().filter_map(|s| {
                s.per_pod
                    .iter()
                    .find(|p| &p.0 == pod)
                    .map(|p| (x(s.t_seconds), p.1.min(cpu_max)))
            }),
            color.stroke_width(1),
        ))
        .map_err(chart_err)?;
    }
    c.draw_series(LineSeries::new(
        samples.iter().filter_map(|s| {
            s.rule_cpu_ratio_max
                .map(|r| (x(s.t_seconds), r.min(cpu_max)))
        }),
        BLACK.stroke_width(3),
    ))
    .map_err(chart_err)?
    .label("busiest replica, rate 2m (alert input)")
    .legend(legend_line(BLACK.stroke_width(3)));
    c.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, 0.8), (x_max, 0.8)],
        red.stroke_width(2),
    )))
    .map_err(chart_err)?
    .label("alert threshold 80% of limit")
    .legend(legend_line(red.stroke_width(2)));
    let hpa = input.hpa_target_of_limit;
    c.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, hpa), (x_max, hpa)],
        green.stroke_width(1),
    )))
    .map_err(chart_err)?
    .label("HPA target (70% of request)")
    .legend(legend_line(green.stroke_width(1)));
    series_labels(&mut c, SeriesLabelPosition::UpperLeft)?;

    // 4. Replicas.
    let r_max = f64::from(input.max_replicas + 2);
    let mut c = panel!(
        &panels[3],
        "replicas (HPA current, desired, ready); shaded: admin alert pending (amber) / firing (red); red line: notification received",
        r_max,
        "replicas"
    );
    let m = f64::from(input.max_replicas);
    c.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, m), (x_max, m)],
        red.mix(0.6).stroke_width(1),
    )))
    .map_err(chart_err)?
    .label("maxReplicas")
    .legend(legend_line(red.mix(0.6).stroke_width(1)));
    for (name, color, width, f) in [
        (
            "current",
            blue,
            3,
            (|s: &Sample| f64::from(s.replicas_current)) as fn(&Sample) -> f64,
        ),
        ("desired", grey, 1, |s: &Sample| {
            f64::from(s.replicas_desired)
        }),
        ("ready", green, 2, |s: &Sample| f64::from(s.replicas_ready)),
    ] {
        c.draw_series(LineSeries::new(
            step_points(samples, f, x),
            color.stroke_width(width),
        ))
        .map_err(chart_err)?
        .label(name)
        .legend(legend_line(color.stroke_width(width)));
    }
    for e in input.events {
        if let Some(t) = e.t_seconds {
            let y = f64::from(e.to);
            c.draw_series(std::iter::once(Text::new(
                format!("{}→{}", e.from, e.to),
                (x(t), y + 0.6),
                ("sans-serif", 13).into_font(),
            )))
            .map_err(chart_err)?;
        }
    }
    series_labels(&mut c, SeriesLabelPosition::LowerRight)?;
    root.present().map_err(chart_err)?;
    Ok(())
}

/// A legend entry: a short line in the series' style.
fn legend_line(style: ShapeStyle) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 18, ly)], style)
}

/// The legend box of a panel, at `position`.
fn series_labels<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    c: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), DrillError> {
    c.configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(chart_err)
}

/// A step line: each value holds until the next sample.
fn step_points(
    samples: &[Sample],
    f: fn(&Sample) -> f64,
    x: impl Fn(f64) -> f64,
) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(samples.len() * 2);
    for (i, s) in samples.iter().enumerate() {
        out.push((x(s.t_seconds), f(s)));
        if let Some(n) = samples.get(i + 1) {
            out.push((x(n.t_seconds), f(s)));
        }
    }
    out
}

/// Writes `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &str) -> Result<(), DrillError> {
    let path = dir.join(name);
    std::fs::write(&path, text)
        .map_err(|e| DrillError::io(format!("writing {}", path.display()), e))
}

/// Notifications as JSON (with their times).
pub fn notifications_json(notifications: &[Notification]) -> String {
    serde_json::to_string_pretty(notifications).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, state: AlertState, replicas: u32) -> Sample {
        Sample {
            t_seconds: t,
            target_tps: 500.0,
            achieved_tps: 498.0,
            scored_tps: 480.0,
            errors_per_s: 0.0,
            p95_ms: Some(12.5),
            replicas_current: replicas,
            replicas_desired: replicas,
            replicas_ready: replicas,
            cpu_ratio_max: Some(0.91),
            rule_cpu_ratio_max: Some(0.85),
            queue_length: Some(10.0),
            alert_state: state,
            per_pod: vec![("fraudops-api-1".into(), 0.91, true)],
        }
    }

    #[test]
    fn csv_has_the_issues_columns_first() {
        let csv = series_csv(&[sample(1.0, AlertState::Pending, 6)]);
        let mut lines = csv.lines();
        let header = lines.next().expect("header");
        assert!(header.starts_with(
            "t_seconds,target_tps,achieved_tps,p95_ms,replicas_current,replicas_desired,cpu_ratio_max,alert_state"
        ));
        assert_eq!(
            lines.next(),
            Some("1.0,500,498.0,12.50,6,6,0.910,pending,480.0,0.0,6,0.850,10")
        );
    }

    #[test]
    fn alert_spans() {
        let s = vec![
            sample(0.0, AlertState::Inactive, 4),
            sample(1.0, AlertState::Pending, 6),
            sample(2.0, AlertState::Pending, 6),
            sample(3.0, AlertState::Firing, 6),
            sample(4.0, AlertState::Firing, 6),
        ];
        assert_eq!(spans(&s, AlertState::Pending), vec![(1.0, 3.0)]);
        assert_eq!(spans(&s, AlertState::Firing), vec![(3.0, 4.0)]);
    }

    #[test]
    fn draws_an_svg_with_every_panel() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chart.svg");
        let samples: Vec<Sample> = (0..50)
            .map(|i| {
                let state = match i {
                    0..30 => AlertState::Inactive,
                    30..40 => AlertState::Pending,
                    _ => AlertState::Firing,
                };
                sample(f64::from(i), state, 4 + (i / 20) as u32)
            })
            .collect();
        draw_chart(
            &path,
            &ChartInput {
                title: "test",
                samples: &samples,
                events: &[],
                marks: &[Mark {
                    t_seconds: 45.0,
                    label: "notified".into(),
                }],
                hpa_target_of_limit: 0.35,
                max_replicas: 6,
            },
        )
        .expect("draws");
        let svg = std::fs::read_to_string(&path).expect("svg");
        assert!(svg.starts_with("<svg"));
        for caption in ["load:", "p95 latency", "CPU per replica", "replicas (HPA"] {
            assert!(svg.contains(caption), "missing {caption}");
        }
    }
}
