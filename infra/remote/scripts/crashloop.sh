# deploydrill-fault-crashloop CONTAINER UPTIME LIFETIME PIDFILE: kills the container's main
# process from the host (SIGKILL through sudo: a crash, which the restart policy answers, where
# `docker kill` would count as a manual stop) UPTIME seconds after each start, while the
# container's restart policy is "always", for at most LIFETIME seconds. It writes its pid to
# PIDFILE first and removes it when it ends.
name=$1 up=$2 life=$3 pidfile=$4
echo $$ >"$pidfile"
end=$(($(date +%s) + life))
killed=
while [ "$(date +%s)" -lt "$end" ]; do
	state=$(docker container inspect --format '{{.State.Pid}} {{.State.StartedAt}} {{.HostConfig.RestartPolicy.Name}}' "$name") || break
	set -- $state
	[ "$3" = always ] || break
	if [ "$1" -gt 0 ] && [ "$2" != "$killed" ]; then
		sleep "$up"
		if [ "$(docker container inspect --format '{{.State.Pid}} {{.State.StartedAt}}' "$name")" = "$1 $2" ]; then
			sudo -n kill -KILL "$1" && killed=$2
		fi
	else
		sleep 0.1
	fi
done
rm -f "$pidfile"
