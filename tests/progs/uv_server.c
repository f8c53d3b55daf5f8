/* A libuv TCP server for the integration tests, run under the shim: libuv closes descriptors
 * through syscall(SYS_close) (uv__close_nocancel), which no close() wrapper sees. Listens on
 * 127.0.0.1:0 and prints "port N"; for each connection it waits for the first bytes of the
 * request, stops reading (the rest stays unread: a plain close answers it with RST), writes
 * REPLY bytes and closes with uv_close, printing "closed I". Stops after COUNT connections.
 *   uv_server COUNT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define REPLY 200000

static uv_loop_t *loop;
static uv_tcp_t server;
static long count, served;
static char reply[REPLY];

struct conn {
	uv_tcp_t tcp;
	uv_write_t write;
	char buf[16]; /* small: most of the request stays unread */
};

static void on_closed(uv_handle_t *h)
{
	printf("closed %ld\n", served++);
	fflush(stdout);
	free(h->data);
	if (served == count)
		uv_close((uv_handle_t *)&server, NULL);
}

static void on_written(uv_write_t *w, int status)
{
	(void)status;
	uv_close((uv_handle_t *)w->handle, on_closed);
}

static void alloc_buf(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct conn *c = h->data;
	*buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	(void)buf;
	struct conn *c = s->data;
	uv_read_stop(s);
	if (n < 0) {
		uv_close((uv_handle_t *)s, on_closed);
		return;
	}
	uv_buf_t out = uv_buf_init(reply, sizeof reply);
	uv_write(&c->write, s, &out, 1, on_written);
}

static void on_connection(uv_stream_t *srv, int status)
{
	if (status < 0)
		return;
	struct conn *c = calloc(1, sizeof *c);
	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(srv, (uv_stream_t *)&c->tcp) == 0)
		uv_read_start((uv_stream_t *)&c->tcp, alloc_buf, on_read);
	else
		uv_close((uv_handle_t *)&c->tcp, on_closed);
}

int main(int argc, char **argv)
{
	count = argc > 1 ? atol(argv[1]) : 1;
	memset(reply, 'u', sizeof reply);
	loop = uv_default_loop();
	struct sockaddr_in addr;
	uv_ip4_addr("127.0.0.1", 0, &addr);
	uv_tcp_init(loop, &server);
	if (uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) != 0 ||
	    uv_listen((uv_stream_t *)&server, 64, on_connection) != 0)
		return 1;
	struct sockaddr_in bound;
	int len = sizeof bound;
	uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len);
	printf("port %d\n", ntohs(bound.sin_port));
	fflush(stdout);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return 0;
}
