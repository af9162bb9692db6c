package report

// htmlPage is the HTML report's template: inline CSS and markup, no script.
const htmlPage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>trtd report: {{.R.Model.Name}} — {{.Headline}}</title>
<style>
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f4f6; color: #24292f; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 20px 40px; }
header h1 { font-size: 22px; margin: 0 0 12px; font-weight: 600; }
header h1 small { color: #57606a; font-weight: 400; font-size: 15px; }
.outcome { border-radius: 8px; padding: 14px 18px; margin-bottom: 18px; border: 1px solid; }
.outcome strong { font-size: 20px; display: block; }
.outcome.good { background: #dafbe1; border-color: #4ac26b; color: #0f5323; }
.outcome.wait { background: #fff8c5; border-color: #d4a72c; color: #5c4100; }
.outcome.bad { background: #ffebe9; border-color: #ff8182; color: #82071e; }
.outcome p { margin: 4px 0 0; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 16px 20px; margin-bottom: 18px; }
h2 { font-size: 17px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 18px; margin-bottom: 18px; }
.grid section { margin-bottom: 0; }
table { border-collapse: collapse; width: 100%; }
.scroll { overflow-x: auto; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { font-weight: 600; color: #57606a; font-size: 13px; }
table.kv th { width: 34%; font-weight: 500; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; word-break: break-all; }
.pill { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 13px; font-weight: 600; white-space: nowrap; }
.pill.good { background: #dafbe1; color: #1a7f37; } .pill.bad { background: #ffebe9; color: #b42318; } .pill.wait { background: #fff8c5; color: #7d4e00; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; font-size: 13px; color: #24292f; margin-top: 6px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.sw { display: inline-block; width: 22px; height: 12px; }
.sw.area { background: var(--c); border: 1px solid rgba(0,0,0,.25); }
.sw.line { height: 0; border-top: 3px solid var(--c); }
.sw.dash { height: 0; border-top: 3px dashed var(--c); }
.sw.dot { height: 0; border-top: 2px dotted var(--c); }
.sw.mark { width: 12px; border-radius: 6px; background: var(--c); }
.note { color: #57606a; font-size: 13px; margin: 8px 0 0; }
.muted { color: #57606a; }
pre { background: #f6f8fa; border: 1px solid #eaeef2; border-radius: 6px; padding: 8px 10px; overflow-x: auto; font-size: 12px; white-space: pre-wrap; word-break: break-all; }
details { margin: 4px 0 10px; }
summary { cursor: pointer; color: #0969da; }
ul { margin: 6px 0; padding-left: 22px; }
footer { color: #57606a; font-size: 13px; text-align: center; }
</style>
</head>
<body>
<main>
<header>
<h1>trtd report <small>· {{.R.Model.Name}}{{if .R.Job}} · job {{.R.Job}}{{end}}</small></h1>
<div class="outcome {{.Tone}}" id="outcome">
<strong>{{.Headline}}{{with .R.Engine}}{{if .Stage}} — stage {{.Stage}}{{end}}{{end}}</strong>
{{if .R.Reason}}<p>{{.R.Reason}}</p>{{end}}
{{with .R.Engine}}<p>Engine <code>{{.File}}</code>{{if .Bytes}}, {{human .Bytes}}{{end}}{{if .SHA256}}, sha256 <code>{{short .SHA256}}</code>{{end}}.</p>{{end}}
{{with .R.Reuse}}<p>{{reuseLine . $.Attempts}}</p>{{end}}
{{if .R.Portability}}<p>{{.R.Portability}}</p>{{end}}
{{with .R.Fleet}}{{with .Pulled}}<p>Engine pulled from the fleet registry <code>{{$.R.Fleet.Registry}}</code> (<code>{{.Digest}}</code>), built by {{.BuiltBy}} at stage {{.Stage}}; {{.Checked}}.</p>{{end}}{{with .Pull}}<p>Registry not used: {{.}}.</p>{{end}}{{with .Start}}<p>The ladder started at {{.}}, where this device's peers succeeded.</p>{{end}}{{with .Push}}<p>Sharing: {{.}}.</p>{{end}}{{end}}
</div>
</header>
{{with .R.Waiting}}<section><h2>Waiting for a builder</h2><p>{{.Missing}}</p>
<p>What trtd will do once a builder is available:</p><ul>{{range .WouldDo}}<li>{{.}}</li>{{end}}</ul>
{{if not .NextRetry.IsZero}}<p class="muted">Next retry: {{utc .NextRetry}}.</p>{{end}}</section>{{end}}
<section id="memory">
<h2>Memory during the build</h2>
{{if .Plot}}{{.Plot}}{{else}}<p class="muted" id="noplot">{{.NoPlot}}</p>{{end}}
</section>
{{if .Attempts}}<section id="attempts">
<h2>Attempts</h2>
<div class="scroll"><table>
<thead><tr><th>#</th><th>stage</th><th>outcome</th><th class="num">duration</th><th class="num">peak worker RSS</th><th class="num">swap used</th><th>reason</th></tr></thead>
<tbody>
{{range .Attempts}}<tr><td>{{.N}}</td><td>{{.Name}}{{if and .Kind (ne .Kind "build")}} <span class="muted">({{.Kind}})</span>{{end}}</td><td><span class="pill {{.Tone}}">{{.Outcome}}</span></td><td class="num">{{.Duration}}</td><td class="num">{{.PeakRSS}}</td><td class="num">{{.SwapUsed}}</td><td>{{.Reason}}</td></tr>
{{end}}</tbody>
</table></div>
{{range .Attempts}}<h3>Attempt {{.N}}: {{.Name}}</h3>
<p>{{.SettingsWhat}}: {{.Settings}}.</p>
{{with .Skipped}}<p class="skipped">Not applied on this TensorRT:</p><ul class="skipped">{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}{{with .Int8}}
<p>int8: {{.}}.</p>{{end}}
{{if .Memory}}<p>{{.Memory}}</p>{{end}}
{{if .Validation}}<p>Validation: {{.Validation}}.</p>{{end}}
{{if .MemUsage}}<p>TensorRT's own memory accounting:</p><ul>{{range .MemUsage}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Calls}}<details><summary>builder calls</summary><pre>{{range .Calls}}{{.}}
{{end}}</pre></details>{{end}}
{{if .LogTail}}<details><summary>last log lines</summary><pre>{{.LogTail}}</pre></details>{{end}}
{{end}}
</section>{{end}}
<div class="grid">
<section id="model"><h2>Model</h2>
<table class="kv">{{range .Model}}<tr><th>{{.K}}</th><td{{if eq .K "sha256"}} class="mono"{{end}}>{{.V}}</td></tr>{{end}}</table>
{{with .R.Model.Warnings}}<ul>{{range .}}<li>warning: {{.}}</li>{{end}}</ul>{{end}}
</section>
<section id="device"><h2>Device</h2>
{{if .Device}}<table class="kv">{{range .Device}}<tr><th>{{.K}}</th><td>{{.V}}</td></tr>{{end}}</table>{{else}}<p class="muted">No device diagnosis was recorded.</p>{{end}}
{{with .R.Builder}}<h3>Builder</h3><table class="kv">
<tr><th>backend</th><td>{{.Backend}}</td></tr>
{{if .TensorRT}}<tr><th>TensorRT</th><td>{{.TensorRT}}</td></tr>{{end}}
{{if .GPU}}<tr><th>GPU</th><td>{{.GPU}} (compute capability {{.ComputeCapability}})</td></tr>{{end}}
{{if .CUDARuntime}}<tr><th>CUDA runtime</th><td>{{.CUDARuntime}}</td></tr>{{end}}
</table>{{end}}
</section>
</div>
{{with .R.Plan}}{{if .Stages}}<section id="plan"><h2>Plan</h2>
<p>Starting stage: <b>{{.Start}}</b>; swap planned: {{human .SwapBytes}}.</p>
<div class="scroll"><table><thead><tr><th>stage</th><th class="num">predicted peak</th><th>decision</th></tr></thead><tbody>
{{range .Stages}}<tr><td>{{.Name}}</td><td class="num">{{human .PeakBytes}}</td><td>{{planDecision .}}</td></tr>
{{end}}</tbody></table></div>
{{with .Notes}}<ul>{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
</section>{{end}}{{end}}
{{with .R.Recommendations}}<section id="recommendations"><h2>Recommendations</h2><ul>{{range .}}<li>{{.}}</li>{{end}}</ul></section>{{end}}
{{with .R.KeptModel}}<p class="muted">The uploaded model is kept at <code>{{.}}</code>.</p>{{end}}
<footer>{{.R.Tool.Name}} {{.R.Tool.Version}} · report schema {{.R.Schema}} · {{utc .R.Generated}}</footer>
</main>
</body>
</html>
`
