# Shared by run.sh and s3.sh (sourced): loopback servers for the benchmarks.
# Needs ROOT (the repository) set.

# A free TCP port on loopback.
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# nginx with deploy/nginx's client rules on PORT (account bench / bench-pw)
# and, given OPERATOR_PORT, its operator rules there (operator / operator-pw).
start_nginx() {  # DIR PORT [OPERATOR_PORT]
  mkdir -p "$1/root" "$1/body" "$1/tmp" "$1/logs"
  htpasswd -cbB "$1/htpasswd" bench bench-pw 2>/dev/null
  operator=""
  if [ -n "${3:-}" ]; then
    htpasswd -cbB "$1/operators" operator operator-pw 2>/dev/null
    operator="server { listen 127.0.0.1:$3; root $1/root; auth_basic_user_file $1/operators; include $ROOT/deploy/nginx/fbk-operator.conf; }"
  fi
  user=""; [ "$(id -u)" = 0 ] && user="user root;"
  module=""; [ -n "${3:-}" ] && module="load_module /usr/lib/nginx/modules/ngx_http_dav_ext_module.so;"  # PROPFIND
  cat > "$1/nginx.conf" <<CONF
$module
$user
worker_processes 2;
pid $1/nginx.pid;
error_log $1/logs/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $1/body;
  proxy_temp_path $1/tmp; fastcgi_temp_path $1/tmp; uwsgi_temp_path $1/tmp; scgi_temp_path $1/tmp;
  server { listen 127.0.0.1:$2; root $1/root; auth_basic_user_file $1/htpasswd; include $ROOT/deploy/nginx/fbk-dav.conf; }
  $operator
}
CONF
  nginx -p "$1" -e "$1/logs/error.log" -c "$1/nginx.conf"
}
