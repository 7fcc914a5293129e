// The sample page's three quality charts (as FastQC draws them), from the sample's quality document:
// bases[cycle] = [mean, median, lower quartile, upper quartile, 10th, 90th percentile],
// composition[cycle] = [G, A, T, C] percent, sequences[q] = reads whose mean quality is q.
"use strict";

function qualityCharts() {
  const source = document.getElementById("quality-data");
  if (!source || !window.Chart) return;
  const quality = JSON.parse(source.textContent);
  const cycles = quality.bases.map((_, index) => index + 1);
  const line = (label, data, color, extra = {}) => ({
    label, data, borderColor: color, backgroundColor: color, pointRadius: 0, borderWidth: 1.5, ...extra,
  });
  const common = { animation: false, maintainAspectRatio: false, interaction: { mode: "index", intersect: false } };
  const axis = (text, extra = {}) => ({ title: { display: true, text }, ...extra });

  new window.Chart(document.getElementById("chart-bases"), {
    type: "line",
    data: {
      labels: cycles,
      datasets: [
        line("90th percentile", quality.bases.map((row) => row[5]), "#9ecae1", { fill: "+1", backgroundColor: "rgba(158,202,225,0.35)" }),
        line("10th percentile", quality.bases.map((row) => row[4]), "#9ecae1"),
        line("Upper quartile", quality.bases.map((row) => row[3]), "#3182bd", { fill: "+1", backgroundColor: "rgba(49,130,189,0.35)" }),
        line("Lower quartile", quality.bases.map((row) => row[2]), "#3182bd"),
        line("Median", quality.bases.map((row) => row[1]), "#d62728"),
        line("Mean", quality.bases.map((row) => row[0]), "#2ca02c"),
      ],
    },
    options: { ...common, scales: { x: axis("Cycle"), y: axis("Quality (Phred)", { min: 0 }) } },
  });

  const bases = ["G", "A", "T", "C"];
  const colors = ["#111111", "#2ca02c", "#d62728", "#1f77b4"];
  new window.Chart(document.getElementById("chart-composition"), {
    type: "line",
    data: {
      labels: cycles,
      datasets: bases.map((base, index) => line(base, quality.composition.map((row) => row[index]), colors[index])),
    },
    options: { ...common, scales: { x: axis("Cycle"), y: axis("Percent", { min: 0, max: 100 }) } },
  });

  new window.Chart(document.getElementById("chart-sequences"), {
    type: "bar",
    data: {
      labels: quality.sequences.map((_, index) => index),
      datasets: [{ label: "Reads", data: quality.sequences, backgroundColor: "#3182bd" }],
    },
    options: { ...common, scales: { x: axis("Mean quality (Phred)"), y: axis("Reads", { min: 0 }) } },
  });
}

document.addEventListener("DOMContentLoaded", qualityCharts);
