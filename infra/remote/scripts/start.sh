# deploydrill-fault-start SCRIPT MARKER PIDFILE ARGS...: starts `sh -c SCRIPT MARKER ARGS...` in a
# session of its own, detached from this one (stdio on /dev/null), and returns once the process
# has written its pid to PIDFILE (it must, first thing).
script=$1 marker=$2 pidfile=$3
shift 3
rm -f "$pidfile"
setsid -f sh -c "$script" "$marker" "$@" </dev/null >/dev/null 2>&1
i=0
until [ -s "$pidfile" ]; do
	i=$((i + 1))
	if [ "$i" -gt 100 ]; then
		echo "$marker did not start: no pid in $pidfile after 5s" >&2
		exit 1
	fi
	sleep 0.05
done
