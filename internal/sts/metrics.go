package sts

// count counts one answered request in gatehouse_sts_requests_total: its
// operation (from out, "unknown" when the request type was not read) and
// its outcome: the fault's code, "invalid" for a Validate answered with
// the invalid status, else "success".
func (srv *Server) count(out *Output, f *fault) {
	op := "unknown"
	if out != nil {
		switch out.requestType {
		case RequestIssue:
			op = "issue"
		case RequestValidate:
			op = "validate"
		case RequestRenew:
			op = "renew"
		case RequestCancel:
			op = "cancel"
		}
	}
	outcome := "success"
	switch {
	case f != nil:
		outcome = f.code
	case op == "validate" && out.Body != nil:
		if c := out.Body.FindElement("Status/Code"); c != nil && c.Text() == StatusInvalid {
			outcome = "invalid"
		}
	}
	srv.metrics.STSRequest(op, outcome)
}
