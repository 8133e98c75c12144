-- wrk script of the WS-Security targets: POST the signed message that
-- bench/mintsoap wrote (its path in BODY_FILE) as a SOAP 1.1 call.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
wrk.headers["SOAPAction"] = '"urn:gatehouse:demo:products/GetProduct"'
