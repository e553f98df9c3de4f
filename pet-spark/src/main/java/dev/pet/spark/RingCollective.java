package dev.pet.spark;

import dev.pet.api.PetException;
import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.spark.BarrierTaskContext;

/**
 * The tasks of one barrier stage as a ring of TCP connections: rank r sends to rank r+1 and receives from rank r-1, and
 * an all-gather passes every message once around the ring (size - 1 rounds; each task sends and receives
 * (size - 1) messages, whatever the number of tasks). Spark's {@code BarrierTaskContext.allGather} polls its reply
 * once a second, so every gather through it costs at least a second; the ring uses it once, to exchange the tasks'
 * listening addresses (the hosts of {@code getTaskInfos}). Channels are interruptible: when Spark kills a barrier
 * stage, blocked reads end; when a task fails, closing its channels ends its neighbours' reads.
 */
final class RingCollective implements TaskCollective {
    private final BarrierTaskContext context;
    private final FaultInjection faults;
    private final int rank;
    private final int size;
    private final SocketChannel next;
    private final SocketChannel previous;
    private final ExecutorService sender;
    private long gathers;

    private RingCollective(BarrierTaskContext context, FaultInjection faults, SocketChannel next,
            SocketChannel previous) {
        this.context = context;
        this.faults = faults;
        this.rank = context.partitionId();
        this.size = context.getTaskInfos().length;
        this.next = next;
        this.previous = previous;
        this.sender = next == null ? null : Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "pet-ring-send-" + rank);
            t.setDaemon(true);
            return t;
        });
    }

    /** Opens this task's place in the ring; every task of the stage must call it (it is a barrier). */
    static RingCollective open(BarrierTaskContext context, FaultInjection faults) {
        Objects.requireNonNull(context, "context");
        Objects.requireNonNull(faults, "faults");
        int rank = context.partitionId();
        int size = context.getTaskInfos().length;
        if (size == 1) {
            context.barrier();
            return new RingCollective(context, faults, null, null);
        }
        String host = host(context.getTaskInfos()[rank].address());
        ServerSocketChannel server = null;
        SocketChannel next = null;
        SocketChannel previous = null;
        try {
            server = ServerSocketChannel.open().bind(new InetSocketAddress(0));
            int port = ((InetSocketAddress) server.getLocalAddress()).getPort();
            String[] addresses = context.allGather(host + ":" + port);
            String to = addresses[(rank + 1) % size];
            try {
                next = SocketChannel.open(new InetSocketAddress(host(to), port(to)));
            } catch (IOException e) {
                throw new PetException("data-parallel task " + rank + " cannot connect to task " + (rank + 1) % size
                        + " at " + to + ": " + e + ". The ring exchange needs the executors to accept connections "
                        + "from each other; set spark.pet.exchange=barrier to send gradients through the driver");
            }
            next.socket().setTcpNoDelay(true);
            write(next, hello(context, rank));
            previous = server.accept();
            previous.socket().setTcpNoDelay(true);
            byte[] expected = hello(context, (rank + size - 1) % size);
            byte[] got = read(previous);
            if (!Arrays.equals(expected, got)) {
                throw new PetException("data-parallel task " + rank + " expected task " + (rank + size - 1) % size
                        + " of its stage attempt to connect, but got '" + new String(got, StandardCharsets.UTF_8) + "'");
            }
            RingCollective ring = new RingCollective(context, faults, next, previous);
            next = null;
            previous = null;
            return ring;
        } catch (IOException e) {
            throw new PetException("data-parallel task " + rank + " cannot set up the ring exchange: " + e, e);
        } finally {
            closeQuietly(server);
            closeQuietly(next);
            closeQuietly(previous);
        }
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public List<byte[]> allGather(byte[] message) {
        Objects.requireNonNull(message, "message");
        gathers++;
        faults.beforeGather(context, gathers);
        byte[][] all = new byte[size][];
        all[rank] = message;
        // Round k: pass on the message of rank (rank - k), receive the one of rank (rank - k - 1).
        for (int k = 0; k < size - 1; k++) {
            byte[] outgoing = all[Math.floorMod(rank - k, size)];
            Future<?> sent = sender.submit(() -> {
                write(next, outgoing);
                return null;
            });
            try {
                all[Math.floorMod(rank - k - 1, size)] = read(previous);
                sent.get();
            } catch (IOException e) {
                sent.cancel(true);
                throw new PetException("data-parallel task " + rank + " lost its ring neighbour (gather " + gathers
                        + "): " + e, e);
            } catch (ExecutionException e) {
                throw new PetException("data-parallel task " + rank + " cannot send to its ring neighbour (gather "
                        + gathers + "): " + e.getCause(), e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new PetException("data-parallel task " + rank + " was interrupted in gather " + gathers, e);
            }
        }
        return List.of(all);
    }

    @Override
    public void close() {
        if (sender != null) {
            sender.shutdownNow();
        }
        closeQuietly(next);
        closeQuietly(previous);
    }

    private static byte[] hello(BarrierTaskContext context, int rank) {
        return ("pet ring stage " + context.stageId() + " attempt " + context.stageAttemptNumber() + " rank " + rank)
                .getBytes(StandardCharsets.UTF_8);
    }

    /** A frame: the length as 4 bytes, then the bytes. */
    private static void write(SocketChannel channel, byte[] message) throws IOException {
        ByteBuffer length = ByteBuffer.allocate(Integer.BYTES).putInt(0, message.length);
        ByteBuffer body = ByteBuffer.wrap(message);
        while (length.hasRemaining() || body.hasRemaining()) {
            channel.write(new ByteBuffer[] {length, body});
        }
    }

    private static byte[] read(SocketChannel channel) throws IOException {
        ByteBuffer length = ByteBuffer.allocate(Integer.BYTES);
        fill(channel, length);
        int n = length.getInt(0);
        if (n < 0) {
            throw new IOException("corrupt frame length " + n);
        }
        ByteBuffer body = ByteBuffer.allocate(n);
        fill(channel, body);
        return body.array();
    }

    private static void fill(SocketChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) {
                throw new EOFException("the connection closed after " + buffer.position() + " of "
                        + buffer.capacity() + " bytes");
            }
        }
    }

    static String host(String address) {
        int colon = address.lastIndexOf(':');
        return colon < 0 ? address : address.substring(0, colon);
    }

    private static int port(String address) {
        return Integer.parseInt(address.substring(address.lastIndexOf(':') + 1));
    }

    private static void closeQuietly(Closeable c) {
        if (c != null) {
            try {
                c.close();
            } catch (IOException e) {
                // closing after a failure: the failure is what gets reported
            }
        }
    }
}
