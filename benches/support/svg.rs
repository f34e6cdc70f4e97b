//! A line chart as a self-contained SVG (no dependencies): latency percentiles against offered
//! load, for docs/.

use std::fmt::Write;

/// One line of the chart: a name, a colour and (x, y) points.
pub(crate) struct Series<'a> {
    pub(crate) name: &'a str,
    pub(crate) colour: &'a str,
    pub(crate) points: Vec<(f64, f64)>,
}

/// The chart's frame.
pub(crate) struct Chart<'a> {
    pub(crate) title: &'a str,
    pub(crate) x_label: &'a str,
    pub(crate) y_label: &'a str,
    /// A dashed horizontal line at this y, with its label.
    pub(crate) threshold: Option<(f64, &'a str)>,
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 55.0;

/// The chart with a linear x axis from 0 and a logarithmic y axis (latencies span decades).
pub(crate) fn line_chart(chart: &Chart, series: &[Series]) -> String {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let x_max = nice_ceiling(xs.fold(1.0, f64::max));
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(chart.threshold.map(|t| t.0))
        .filter(|y| *y > 0.0)
        .collect();
    let decade_low = ys.iter().copied().fold(f64::MAX, f64::min).log10().floor();
    let decade_high = ys
        .iter()
        .copied()
        .fold(1.0, f64::max)
        .log10()
        .ceil()
        .max(decade_low + 1.0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_of = |x: f64| LEFT + x / x_max * plot_w;
    let y_of = |y: f64| {
        let t = (y.max(10f64.powf(decade_low)).log10() - decade_low) / (decade_high - decade_low);
        TOP + plot_h * (1.0 - t)
    };

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
"##,
        LEFT + plot_w / 2.0,
        escape(chart.title)
    );
    // Grid and ticks: y per decade (1, 2, 5 within), x in five steps.
    for decade in decade_low as i32..=decade_high as i32 {
        for m in [1.0, 2.0, 5.0] {
            let y = m * 10f64.powi(decade);
            if y.log10() > decade_high + 1e-9 {
                continue;
            }
            let py = y_of(y);
            let stroke = if m == 1.0 { "#cccccc" } else { "#eeeeee" };
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="{stroke}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                py + 4.0,
                number(y)
            );
        }
    }
    for step in 0..=5 {
        let x = x_max * step as f64 / 5.0;
        let px = x_of(x);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#eeeeee"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0,
            number(x)
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888888"/>
<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>
<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"##,
        LEFT + plot_w / 2.0,
        HEIGHT - 12.0,
        escape(chart.x_label),
        TOP + plot_h / 2.0,
        escape(chart.y_label)
    );
    if let Some((y, label)) = chart.threshold {
        let py = y_of(y);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#d62728" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" fill="#d62728">{}</text>"##,
            LEFT + plot_w,
            LEFT + 6.0,
            py - 5.0,
            escape(label)
        );
    }
    for (n, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", x_of(*x), y_of(*y)))
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"##,
            points.join(" "),
            s.colour
        );
        for (x, y) in &s.points {
            let _ = writeln!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"##,
                x_of(*x),
                y_of(*y),
                s.colour
            );
        }
        let ly = TOP + 20.0 + 20.0 * n as f64;
        let _ = writeln!(
            svg,
            r##"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"##,
            LEFT + plot_w + 8.0,
            LEFT + plot_w + 30.0,
            s.colour,
            LEFT + plot_w + 36.0,
            ly + 4.0,
            escape(s.name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The smallest 1, 2 or 5 × 10^k at or above `x`.
fn nice_ceiling(x: f64) -> f64 {
    let decade = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|v| *v >= x)
        .unwrap_or(10.0 * decade)
}

fn number(x: f64) -> String {
    if x >= 1.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
