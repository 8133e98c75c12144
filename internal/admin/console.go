package admin

import (
	"embed"
	"io/fs"
	"net/http"
)

// The console is a static page and script embedded in the binary (no build
// step, no Node.js): everything it shows comes from the admin API, which
// carries the access checks. uPlot is vendored under static/uplot (see its
// VERSION and LICENSE files).
//
//go:embed console/static
var consoleFiles embed.FS

// consoleCSP allows only the console's own scripts; uPlot sets element
// styles, hence 'unsafe-inline' for styles alone.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func consoleRoutes(mux *http.ServeMux, _ Backend, _ Access) {
	static, err := fs.Sub(consoleFiles, "console/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	index, err := fs.ReadFile(static, "index.html")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix("/console/static/", http.FileServerFS(static))
	secure := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hd := w.Header()
			hd.Set("Content-Security-Policy", consoleCSP)
			hd.Set("X-Content-Type-Options", "nosniff")
			hd.Set("Referrer-Policy", "no-referrer")
			h.ServeHTTP(w, r)
		})
	}
	mux.Handle("GET /console", secure(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(index)
	})))
	mux.Handle("GET /console/static/", secure(files))
	mux.Handle("GET /{$}", http.RedirectHandler("/console", http.StatusFound))
}
