package dev.pet.spark;

import java.io.Serializable;
import java.util.Iterator;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.rdd.RDD;
import scala.jdk.javaapi.CollectionConverters;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;
import scala.runtime.AbstractFunction1;

/**
 * {@code RDD.barrier().mapPartitions} for Java: the Java RDD API has no barrier stage of its own. The result goes
 * through a one-partition shuffle, which makes the barrier stage a shuffle-map stage: Spark retries a failed barrier
 * shuffle-map stage as a whole, but aborts the job when a barrier result stage fails.
 */
final class Barrier {
    private Barrier() {
    }

    static <T, S> JavaRDD<S> mapPartitions(JavaRDD<T> rdd, FlatMapFunction<Iterator<T>, S> body, Class<S> type) {
        ClassTag<S> tag = ClassTag$.MODULE$.apply(type);
        RDD<S> out = rdd.rdd().barrier().mapPartitions(new Body<>(body), false, tag);
        return JavaRDD.fromRDD(out, tag).repartition(1);
    }

    private static final class Body<T, S> extends AbstractFunction1<scala.collection.Iterator<T>,
            scala.collection.Iterator<S>> implements Serializable {
        private static final long serialVersionUID = 1L;
        private final FlatMapFunction<Iterator<T>, S> body;

        Body(FlatMapFunction<Iterator<T>, S> body) {
            this.body = body;
        }

        @Override
        public scala.collection.Iterator<S> apply(scala.collection.Iterator<T> partition) {
            try {
                return CollectionConverters.asScala(body.call(CollectionConverters.asJava(partition)));
            } catch (RuntimeException e) {
                throw e;
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
    }
}
