# Helpers shared by http.sh and https.sh (sourced, not run). They use the caller's $work directory.

# A free TCP port on 127.0.0.1, chosen by the kernel.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The temp paths nginx wants, all under $1.
temp_paths() {
    for kind in client_body proxy fastcgi uwsgi scgi; do echo "  ${kind}_temp_path $1/$kind;"; done
}

# Starts a command in its own process group; echoes the group leader's pid.
start() {
    local core="$1"
    shift
    setsid taskset -c "$core" "$@" >"$work/$(basename "$1").out" 2>&1 &
    echo $!
}
wait_port() {
    for _ in $(seq 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1"
    exit 1
}
# CPU ticks (user+system) of every process in a process group.
ticks() {
    local total=0
    for stat in /proc/[0-9]*/stat; do
        # Fields after the command name: the name may hold spaces, so count from the end of "(...)".
        local line
        # The read builtin, not $(cat): a fork per process per measurement slowed every round down.
        { read -r line < "$stat"; } 2>/dev/null || continue
        local rest="${line##*) }"
        read -r -a after <<< "$rest"
        # after[2] = pgrp, after[11] = utime, after[12] = stime
        if [ "${after[2]}" = "$1" ]; then total=$((total + after[11] + after[12])); fi
    done
    echo "$total"
}
# Busy and idle jiffies of cores 0 and 1.
core_times() {
    awk '$1 == "cpu0" || $1 == "cpu1" {printf "%d %d ", $2 + $3 + $4 + $7 + $8, $5 + $6} END {print ""}' /proc/stat
}

# The backend nginx both scripts proxy to: a tiny response from its configuration and files (the 100 KB
# one) from $work/www by sendfile, on $backend_port. $1: worker_connections; $2: worker_rlimit_nofile ("" for
# none). Uses the caller's $user_line and $work.
backend_conf() {
    cat <<EOF
daemon off;
$user_line
worker_processes 1;
${2:+worker_rlimit_nofile $2;}
pid $work/backend/nginx.pid;
error_log $work/backend/error.log;
events { worker_connections $1; }
http {
  access_log off;
$(temp_paths "$work/backend")
  keepalive_requests 1000000;
  sendfile on;
  open_file_cache max=16;
  server {
    listen 127.0.0.1:$backend_port;
    root $work/www;
    location = /tiny.txt { default_type text/plain; return 200 "hello, world\n"; }
  }
}
EOF
}
