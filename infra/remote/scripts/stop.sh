# deploydrill-fault-stop PIDFILE MARKER: stops the process PIDFILE names, and its process group,
# with SIGTERM, if its command line holds MARKER (a pid reused since is left alone), waits until
# it is gone (a zombie counts as gone) and removes PIDFILE. Nothing to stop is success.
pidfile=$1 marker=$2
[ -e "$pidfile" ] || exit 0
pid=$(cat "$pidfile")
case $pid in '' | *[!0-9]*)
	rm -f "$pidfile"
	exit 0
	;;
esac
alive() {
	[ -r "/proc/$pid/stat" ] && [ "$(sed 's/.*) //; s/ .*//' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}
if alive && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"; then
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
	i=0
	while alive; do
		i=$((i + 1))
		if [ "$i" -gt 100 ]; then
			echo "$marker (pid $pid) still running 5s after SIGTERM" >&2
			exit 1
		fi
		sleep 0.05
	done
fi
rm -f "$pidfile"
