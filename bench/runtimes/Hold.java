// The JVM counterpart of bench/hold.c: start threads that block until released, until COUNT
// are alive or creation fails, then print how many were held and how many mappings
// /proc/self/maps had at the peak. Each start is also written to stderr ("held N"), because
// a JVM that runs out of mappings aborts instead of throwing.
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

    public static void main(String[] args) throws Exception {
        int count = args.length > 0 ? Integer.parseInt(args[0]) : 30000;
        CountDownLatch release = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        long before = maps();
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
        long peak = maps();
        release.countDown();
        for (Thread thread : threads) thread.join();
        System.out.printf("{\"runtime\": \"jvm\", \"held\": %d, \"maps_before\": %d, \"maps_peak\": %d, \"error\": %s}%n",
                threads.size(), before, peak, error == null ? "null" : "\"" + error + "\"");
        System.exit(threads.size() == count ? 0 : 1);
    }
}
