package runpodtest

import (
	"fmt"
	"net/url"
	"strconv"
)

// Names of the environment variables WorkerEnv sets: the worker runtime's
// (RunPod sets them in every serverless container) and the client's.
const (
	EnvGetJob       = "RUNPOD_WEBHOOK_GET_JOB"
	EnvPostOutput   = "RUNPOD_WEBHOOK_POST_OUTPUT"
	EnvPostStream   = "RUNPOD_WEBHOOK_POST_STREAM"
	EnvPing         = "RUNPOD_WEBHOOK_PING"
	EnvWorkerAPIKey = "RUNPOD_AI_API_KEY"
	EnvPodID        = "RUNPOD_POD_ID"
	EnvPingInterval = "RUNPOD_PING_INTERVAL"
	EnvEndpointID   = "RUNPOD_ENDPOINT_ID"
	EnvBaseURL      = "RUNPOD_ENDPOINT_BASE_URL"
	EnvAPIKey       = "RUNPOD_API_KEY"
)

// WorkerEnv returns the environment a worker with id workerID (and a client)
// of the default endpoint needs, as WorkerEnvFor describes; nil when workerID
// is not a valid id (letters, digits, '-' and '_').
func (s *Server) WorkerEnv(workerID string) map[string]string {
	env, _ := s.WorkerEnvFor(s.EndpointID(), workerID)
	return env
}

// WorkerEnvFor returns the environment of worker workerID of endpoint ep,
// shaped like production's: URL templates with the $ID and $RUNPOD_POD_ID
// placeholders the worker substitutes, each already carrying a ?gpu= query
// (so the worker must append its own parameters with &), the raw worker key,
// the pod id and ping interval in ms, plus RUNPOD_ENDPOINT_BASE_URL,
// RUNPOD_ENDPOINT_ID and RUNPOD_API_KEY for clients.
func (s *Server) WorkerEnvFor(ep, workerID string) (map[string]string, error) {
	if !s.eps[ep] {
		return nil, fmt.Errorf("runpodtest: endpoint %q is not served", ep)
	}
	if !idPattern.MatchString(workerID) {
		return nil, fmt.Errorf("runpodtest: worker id %q: use letters, digits, '-' and '_' only", workerID)
	}
	base := s.BaseURL() + "/" + ep
	gpu := "?gpu=" + url.QueryEscape(s.cfg.GPUName)
	return map[string]string{
		EnvGetJob:       base + "/job-take/$ID" + gpu,
		EnvPostOutput:   base + "/job-done/$RUNPOD_POD_ID/$ID" + gpu,
		EnvPostStream:   base + "/job-stream/$RUNPOD_POD_ID/$ID" + gpu,
		EnvPing:         base + "/ping/$RUNPOD_POD_ID" + gpu,
		EnvWorkerAPIKey: s.apiKey,
		EnvPodID:        workerID,
		EnvPingInterval: strconv.FormatInt(s.cfg.PingInterval.Milliseconds(), 10),
		EnvEndpointID:   ep,
		EnvBaseURL:      s.BaseURL(),
		EnvAPIKey:       s.apiKey,
	}, nil
}
