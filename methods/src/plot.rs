//! Line charts as standalone SVG files (training curves, accuracy-vs-cost sweeps), written
//! without a plotting dependency.

use std::fmt::Write;

/// One line (or set of markers) of a chart: a legend name, its points and optional error bars.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x, y)` points, drawn in order; non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
    /// Half-lengths of vertical error bars, one per point (empty: none).
    pub errors: Vec<f64>,
    /// Whether the points are joined by a line (else markers only).
    pub joined: bool,
}

impl Series {
    /// A line through `points`.
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series { name: name.into(), points, errors: Vec::new(), joined: true }
    }

    /// Markers at `points` with vertical error bars `± errors` (one per point, or empty).
    pub fn markers(name: impl Into<String>, points: Vec<(f64, f64)>, errors: Vec<f64>) -> Series {
        Series { name: name.into(), points, errors, joined: false }
    }
}

/// One panel: a title, axis labels and its series.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// Title above the panel.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Named ticks of the x axis (categories); empty: numeric ticks.
    pub x_ticks: Vec<(f64, String)>,
}

const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
const W: f64 = 460.0;
const H: f64 = 320.0;
const M: (f64, f64, f64, f64) = (60.0, 20.0, 36.0, 48.0); // left, right, top, bottom

fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| span / s <= 6.0).unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(t);
        t += step;
    }
    out
}

fn label(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e4 || v.abs() < 1e-2) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn panel_svg(out: &mut String, p: &Panel, ox: f64) {
    let err = |s: &Series, i: usize| s.errors.get(i).copied().filter(|e| e.is_finite()).unwrap_or(0.0).abs();
    let pts: Vec<(f64, f64)> = p
        .series
        .iter()
        .flat_map(|s| {
            s.points.iter().enumerate().flat_map(move |(i, &(x, y))| [(x, y - err(s, i)), (x, y + err(s, i))])
        })
        .chain(p.x_ticks.iter().map(|(x, _)| (*x, f64::NAN)))
        .filter(|(x, _)| x.is_finite())
        .collect();
    let ys = || pts.iter().map(|p| p.1).filter(|y| y.is_finite());
    let (mut x0, mut x1) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &(x, _)| (a.min(x), b.max(x)));
    let (mut y0, mut y1) = ys().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
    if pts.is_empty() {
        (x0, x1) = (0.0, 1.0);
    }
    if ys().next().is_none() {
        (y0, y1) = (0.0, 1.0);
    }
    if !p.x_ticks.is_empty() {
        // Categories: half a slot of room on each side.
        (x0, x1) = (x0 - 0.5, x1 + 0.5);
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-12 {
        (y0, y1) = (y0 - 0.5, y1 + 0.5);
    }
    let pad = (y1 - y0) * 0.05;
    (y0, y1) = (y0 - pad, y1 + pad);
    let (pl, pr, pt, pb) = (ox + M.0, ox + W - M.1, M.2, H - M.3);
    let sx = |x: f64| pl + (x - x0) / (x1 - x0) * (pr - pl);
    let sy = |y: f64| pb - (y - y0) / (y1 - y0) * (pb - pt);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="20" text-anchor="middle" font-weight="bold">{}</text>"#,
        (pl + pr) / 2.0,
        escape(&p.title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{pl:.1}" y="{pt:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
        pr - pl,
        pb - pt
    );
    for t in nice_ticks(y0, y1) {
        let y = sy(t);
        let _ = writeln!(
            out,
            r##"<line x1="{pl:.1}" x2="{pr:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            pl - 4.0,
            y + 4.0,
            label(t)
        );
    }
    let x_ticks: Vec<(f64, String)> = if p.x_ticks.is_empty() {
        nice_ticks(x0, x1).into_iter().map(|t| (t, label(t))).collect()
    } else {
        p.x_ticks.clone()
    };
    for (t, text) in x_ticks {
        let x = sx(t);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{pb:.1}" y2="{:.1}" stroke="#444"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            pb + 4.0,
            pb + 16.0,
            escape(&text)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (pl + pr) / 2.0,
        H - 10.0,
        escape(&p.x_label)
    );
    let _ = writeln!(
        out,
        r#"<text transform="translate({:.1},{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        ox + 14.0,
        (pt + pb) / 2.0,
        escape(&p.y_label)
    );
    for (i, s) in p.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        if s.joined {
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                path.join(" ")
            );
        }
        for (i, &(x, y)) in s.points.iter().enumerate().filter(|(_, (x, y))| x.is_finite() && y.is_finite()) {
            let e = err(s, i);
            if e > 0.0 {
                let (cx, lo, hi) = (sx(x), sy(y - e), sy(y + e));
                let _ = writeln!(
                    out,
                    r#"<path d="M{cx:.1},{lo:.1}V{hi:.1}M{:.1},{lo:.1}H{:.1}M{:.1},{hi:.1}H{:.1}" stroke="{color}" stroke-width="1.5" fill="none"/>"#,
                    cx - 4.0,
                    cx + 4.0,
                    cx - 4.0,
                    cx + 4.0
                );
            }
            let r = if s.joined { 2.5 } else { 4.0 };
            let _ = writeln!(out, r#"<circle cx="{:.1}" cy="{:.1}" r="{r}" fill="{color}"/>"#, sx(x), sy(y));
        }
        let ly = pt + 14.0 + 16.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" x2="{:.1}" y1="{ly:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            pl + 8.0,
            pl + 26.0,
            pl + 30.0,
            ly + 4.0,
            escape(&s.name)
        );
    }
}

/// Renders panels side by side as one SVG document.
///
/// ```
/// use methods::plot::{render, Panel, Series};
/// let p = Panel { title: "loss".into(), x_label: "epoch".into(), y_label: "loss".into(),
///     series: vec![Series::line("train", vec![(1.0, 0.9), (2.0, 0.5)])], x_ticks: vec![] };
/// let svg = render(&[p]);
/// assert!(svg.starts_with("<svg") && svg.contains("polyline"));
/// ```
pub fn render(panels: &[Panel]) -> String {
    let mut out = String::new();
    let width = W * panels.len().max(1) as f64;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{H}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, p) in panels.iter().enumerate() {
        panel_svg(&mut out, p, W * i as f64);
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_range_with_round_steps() {
        let t = nice_ticks(0.0, 1.0);
        assert_eq!(t.first(), Some(&0.0));
        assert!((t.last().unwrap() - 1.0).abs() < 1e-9);
        assert!(t.len() >= 3 && t.len() <= 7);
        assert_eq!(label(0.25), "0.25");
        assert_eq!(label(2.0), "2");
    }

    #[test]
    fn every_series_and_point_is_drawn_and_text_is_escaped() {
        let p = Panel {
            title: "a<b".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![
                Series::line("one", vec![(0.0, 1.0), (1.0, 2.0), (2.0, f64::NAN)]),
                Series::line("two", vec![(0.0, 3.0)]),
            ],
            x_ticks: vec![],
        };
        let svg = render(&[p.clone(), p]);
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert_eq!(svg.matches("<circle").count(), 6, "the NaN point is skipped");
        assert!(svg.contains("a&lt;b") && !svg.contains("a<b"));
    }

    #[test]
    fn markers_draw_error_bars_and_category_ticks() {
        let p = Panel {
            title: "accuracy".into(),
            x_label: "method".into(),
            y_label: "%".into(),
            series: vec![Series::markers("mean ± sd", vec![(0.0, 90.0), (1.0, 91.0)], vec![0.5, 0.0])],
            x_ticks: vec![(0.0, "baseline".into()), (1.0, "swd<2>".into())],
        };
        let svg = render(&[p]);
        assert_eq!(svg.matches("<polyline").count(), 0, "markers are not joined");
        assert_eq!(svg.matches("<path").count(), 1, "one error bar: the zero one is not drawn");
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains(">baseline<") && svg.contains("swd&lt;2&gt;"));
    }
}
