package gateway

// childEnv, when set, makes the test binary run the service as a child
// process (see TestRestart*).
const childEnv = "COMFYPOD_GATEWAY_CHILD"

func childMain() int { return 2 }
