package demo

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"
)

// The identity headers the gateway sets for the web application (the
// identity policy of the demo's app route); the app trusts them because
// only the gateway reaches it.
const (
	AppUserHeader    = "X-Auth-User"
	AppSubjectHeader = "X-Auth-Subject"
	AppNameHeader    = "X-Auth-Name"
)

var appPage = template.Must(template.New("app").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Products · Gatehouse demo</title>
</head>
<body>
<main>
<h1 id="hello">Hello {{.User}}, here are your products</h1>
{{if .Name}}<p>Signed in as {{.Name}} ({{.Subject}}).</p>{{end}}
<table id="products">
<thead><tr><th scope="col">Id</th><th scope="col">Name</th><th scope="col">Price</th></tr></thead>
<tbody>
{{range .Products}}<tr><td>{{.ID}}</td><td>{{.Name}}</td><td>{{.Price}} {{.Currency}}</td></tr>
{{end}}</tbody>
</table>
<p>The same list from the products API, with this session (its scopes,
rate limit, quota and WAF apply): <a id="api" href="/product">/product</a></p>
<p><a id="logout" href="/app/logout">Sign out</a></p>
</main>
</body>
</html>
`))

// AppHandler returns the demo's web application for people, which the
// gateway protects with the session authenticator:
//
//	GET /app, /app/...  "Hello <user>, here are your products": the
//	                    products of s, for the user the gateway names
//
// The user is read from AppUserHeader (else AppSubjectHeader); without
// either the gateway did not authenticate the request, and the answer is
// 401. Other methods get 405. The page holds no script.
func AppHandler(s *Store) http.Handler {
	if s == nil {
		panic("demo: AppHandler: nil store")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		sub := r.Header.Get(AppSubjectHeader)
		user := r.Header.Get(AppUserHeader)
		if user == "" {
			user = sub
		}
		if user == "" {
			http.Error(w, "no user: this application is reached only through the gateway", http.StatusUnauthorized)
			return
		}
		var b bytes.Buffer
		if err := appPage.Execute(&b, map[string]any{
			"User": user, "Subject": sub, "Name": r.Header.Get(AppNameHeader), "Products": s.List(),
		}); err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
		if r.Method == http.MethodGet {
			w.Write(b.Bytes()) //nolint:errcheck // the client is gone
		}
	})
}
