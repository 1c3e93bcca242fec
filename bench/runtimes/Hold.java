// The JVM counterpart of bench/hold.c: start threads that block until released, until COUNT
// are alive or creation fails, then print how many were held and how many mappings
// /proc/self/maps had at the peak. Each start is also written to stderr ("held N"), because
// a JVM that runs out of mappings aborts instead of throwing. With HOLD_WAIT set it writes
// "ready" and waits for a line on stdin first.
// Build: javac Hold.java   Run: java -Xss256k Hold 30000
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;

public class Hold {
    static long maps() throws Exception {
        try (var lines = Files.lines(Path.of("/proc/self/maps"))) {
            return lines.count();
        }
    }

    static long osThreads() throws Exception {
        try (var lines = Files.lines(Path.of("/proc/self/status"))) {
            return lines.filter(line -> line.startsWith("Threads:"))
                    .mapToLong(line -> Long.parseLong(line.substring(8).trim())).findFirst().orElse(0);
        }
    }

    public static void main(String[] args) throws Exception {
        int count = args.length > 0 ? Integer.parseInt(args[0]) : 30000;
        if (System.getenv("HOLD_WAIT") != null) { // let a test inspect this process first
            System.err.println("ready");
            new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine();
        }
        CountDownLatch release = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        long before = maps(), threadsBefore = osThreads();
        String error = null;
        try {
            for (int i = 0; i < count; i++) {
                Thread thread = new Thread(() -> {
                    try {
                        release.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                });
                thread.start();
                threads.add(thread);
                System.err.println("held " + threads.size()); // the count survives an abort
            }
        } catch (OutOfMemoryError e) {
            error = e.getMessage();
        }
        long peak = maps(), threadsPeak = osThreads();
        release.countDown();
        for (Thread thread : threads) thread.join();
        System.out.printf("{\"runtime\": \"jvm\", \"held\": %d, \"maps_before\": %d, \"maps_peak\": %d,"
                + " \"threads_before\": %d, \"os_threads_peak\": %d, \"error\": %s}%n",
                threads.size(), before, peak, threadsBefore, threadsPeak, error == null ? "null" : "\"" + error + "\"");
        System.exit(threads.size() == count ? 0 : 1);
    }
}
