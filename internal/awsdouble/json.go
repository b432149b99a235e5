package awsdouble

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

const (
	ecrTargetPrefix = "AmazonEC2ContainerRegistry_V20150921."
	ssmTargetPrefix = "AmazonSSM."
)

type jsonHandler func(d *Double, body []byte) (any, *apiError)

func (d *Double) serveJSON(w http.ResponseWriter, r *http.Request, service, op string, handlers map[string]jsonHandler) {
	reqID := d.requestID()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeJSONError(w, reqID, errorf("SerializationException", "%v", err))
		return
	}
	h, ok := handlers[op]
	if !ok {
		writeJSONError(w, reqID, errorf("UnknownOperationException", "operation %s is not modelled by the double", op))
		return
	}
	full := service + ":" + op
	if !d.hang(full, r) {
		return
	}
	if e := d.admit(full); e != nil {
		writeJSONError(w, reqID, e)
		return
	}
	out, e := h(d, body)
	d.after(full, r)
	if e != nil {
		writeJSONError(w, reqID, e)
		return
	}
	answer, err := json.Marshal(out)
	if err != nil {
		writeJSONError(w, reqID, &apiError{Status: http.StatusInternalServerError, Code: "ServerException", Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", reqID)
	_, _ = w.Write(answer)
}

func decode(body []byte, v any) *apiError {
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errorf("SerializationException", "%v", err)
	}
	return nil
}

// epoch marshals as JSON 1.1 timestamps do: seconds since the epoch as a number.
type epoch time.Time

func (e epoch) MarshalJSON() ([]byte, error) {
	t := time.Time(e)
	return []byte(strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)), nil
}

type jsonTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type ssmParameter struct {
	Name     string `json:"Name"`
	Type     string `json:"Type"`
	Value    string `json:"Value"`
	Version  int    `json:"Version"`
	ARN      string `json:"ARN"`
	DataType string `json:"DataType"`
	Modified epoch  `json:"LastModifiedDate"`
}

var ssmHandlers = map[string]jsonHandler{
	"GetParameter": func(d *Double, body []byte) (any, *apiError) {
		var req struct{ Name string }
		if e := decode(body, &req); e != nil {
			return nil, e
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		v, ok := d.params[req.Name]
		if !ok {
			return nil, errorf("ParameterNotFound", "Parameter %s not found.", req.Name)
		}
		return map[string]ssmParameter{"Parameter": {
			Name: req.Name, Type: "String", Value: v, Version: 1, DataType: "aws:ec2:image",
			ARN:      "arn:aws:ssm:" + d.opts.Region + "::parameter" + req.Name,
			Modified: epoch(d.opts.Now()),
		}}, nil
	},
}

// SetParameter sets (or with value "" removes) an SSM parameter.
func (d *Double) SetParameter(name, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if value == "" {
		delete(d.params, name)
		return
	}
	d.params[name] = value
}
